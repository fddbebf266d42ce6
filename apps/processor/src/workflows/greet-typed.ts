/**
 * The typed example's protobuf workflow: its input and output are the generated
 * `hello.HelloRequest` and `hello.HelloResponse` messages. They travel as canonical proto3
 * JSON, so the CLI client, inspect and the HTTP API read them like any other workflow's.
 */
import { create } from '@bufbuild/protobuf';
import { defineWorkflow, HelloRequestSchema, HelloResponseSchema, protobuf, type HelloRequest, type HelloResponse } from '@durable/core';

/** Greets through HelloService, taking and returning protobuf messages. */
export const greetProto = defineWorkflow<HelloRequest, HelloResponse>(
  'greet_proto',
  async (ctx, request) => {
    const { message } = await ctx.call<{ message: string }>('HelloService', 'SayHello', { name: request.name || 'World' });
    ctx.log.info(`greet_proto: ${message}`);
    return create(HelloResponseSchema, { message });
  },
  { service: 'HelloService', input: protobuf(HelloRequestSchema), output: protobuf(HelloResponseSchema) },
);
