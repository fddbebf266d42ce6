/**
 * typed: typed invocation through workflow definitions; a protobuf-typed workflow.
 *
 * The compiler checks input and output against the definitions the processor registers;
 * greet_proto takes and returns generated protobuf messages.
 *
 *   make example-typed
 */
import { create } from '@bufbuild/protobuf';
import { HelloRequestSchema } from '@durable/core';
import { greetProto, helloWorkflow, orderProcessing } from '@durable/processor/workflows';
import { runExample } from '../shared/run-example.js';

runExample(async ({ client }) => {
  // The definition the processor registers: `message` is a string, and `{ nam: 'x' }`
  // would not compile.
  const message: string = await client.invoke(helloWorkflow, { name: 'Typed' });
  console.log(`hello_workflow: ${message}`);

  // Output fields are typed too.
  const order = await client.invoke(orderProcessing, { orderId: 'order-typed-1', customer: 'Ada', amount: 42 });
  console.log(`order_processing: order ${order.orderId}, receipt ${order.receipt}`);

  // greet_proto takes a hello.HelloRequest and returns a hello.HelloResponse: the client
  // encodes and decodes them with the workflow's protobuf codecs (canonical JSON on the wire).
  const response = await client.invoke(greetProto, create(HelloRequestSchema, { name: 'Protobuf' }));
  console.log(`greet_proto: ${response.$typeName} { message: ${JSON.stringify(response.message)} }`);
});
