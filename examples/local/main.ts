/**
 * local: the processor's workflows in-process with LocalRuntime, no NATS.
 *
 * The same executor and replay engine, with the journal and state in memory: no NATS, no
 * processor, no services (fake ones answer `ctx.call`). This is how workflow code is tested.
 *
 *   make example-local              # needs nothing running
 */
import { LocalRuntime, type ServiceInvoker } from '@durable/core';
import { addTicket, checkout, customWorkflow, helloWorkflow } from '@durable/processor/workflows';

/** Stand-ins for HelloService and TicketService. */
const fakeServices: ServiceInvoker = {
  call: async (service, method, request) => {
    const req = request as { name?: string; ticketId?: string };
    if (service === 'HelloService' && method === 'SayHello') return { message: `Hello, ${req.name}! (from a fake HelloService)` };
    if (service === 'TicketService' && method === 'Reserve') return { success: true, message: `reserved ${req.ticketId}` };
    throw new Error(`no fake for ${service}.${method}`);
  },
  close: () => undefined,
};

async function main(): Promise<void> {
  const local = new LocalRuntime({ workflows: [helloWorkflow, customWorkflow, addTicket, checkout], services: fakeServices });

  console.log(`hello_workflow: ${await local.invoke(helloWorkflow, { name: 'Local' })}`);

  // run() returns the final state, journal included, as a processor would leave it.
  const state = await local.run(customWorkflow, { names: ['Ada', 'Grace'] });
  console.log(`custom_workflow: ${state.status}, journal:`);
  for (const entry of state.journal) console.log(`  step ${entry.stepNumber}: ${entry.stepType}`);

  // Exclusive workflows and their keyed state work too.
  await local.invoke(addTicket, { ticketId: 'A1' }, { partitionKey: 'local-cart' });
  await local.invoke(addTicket, { ticketId: 'A2' }, { partitionKey: 'local-cart' });
  const order = await local.invoke(checkout, {}, { partitionKey: 'local-cart' });
  console.log(`cart_checkout: order with tickets ${order.tickets.join(', ')}`);
}

main().catch((err: unknown) => {
  console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
