/**
 * ticket-cart: a cart per cart ID in keyed state: add, remove, check out.
 *
 * Adding reserves the ticket with TicketService through `ctx.call`. The three workflows are
 * exclusive on the partition key = cart ID: one at a time per cart, in the order submitted,
 * each seeing the cart the one before left.
 *
 *   make example-ticket-cart
 *
 * Needs TicketService (`make run-ticket-service`).
 */
import { addTicket, checkout, removeTicket } from '@durable/processor/workflows';
import { runExample } from '../shared/run-example.js';

runExample(async ({ client }) => {
  const run = Date.now().toString(36);
  const cartId = `cart-${run}`;
  // TicketService keeps reservations while it runs: fresh ticket IDs per run of the example.
  const [a1, a2, a3] = ['A1', 'A2', 'A3'].map((seat) => `${seat}-${run}`) as [string, string, string];
  const onCart = { partitionKey: cartId };

  // Three adds submitted at once: exclusivity runs them one after the other, so none
  // overwrites another's change to the cart.
  const adds = await Promise.all([a1, a2, a3].map((ticketId) => client.submit(addTicket, { ticketId }, onCart)));
  for (const add of adds) {
    const state = await client.waitForResult(add.invocationId);
    const view = addTicket.output.decode(state.currentState, 'cart');
    console.log(`add: ${view.message}; cart ${cartId} holds ${view.tickets.join(', ')}`);
  }

  // Another cart cannot have a ticket this one reserved.
  const other = await client.invoke(addTicket, { ticketId: a2 }, { partitionKey: `cart-${run}-other` });
  console.log(`add ${a2} to another cart: ${other.message}`);

  const removed = await client.invoke(removeTicket, { ticketId: a3 }, onCart);
  console.log(`remove: ${removed.message}; cart holds ${removed.tickets.join(', ')}`);

  // The cart between invocations, as the engine keeps it (keyed state of the cart ID).
  console.log(`keyed state of ${cartId}: ${JSON.stringify(await client.getKeyedState(cartId))}`);

  const order = await client.invoke(checkout, {}, onCart);
  console.log(`checkout: order ${order.orderId} with ${order.tickets.join(', ')}`);
  console.log(`keyed state of ${cartId}: ${JSON.stringify(await client.getKeyedState(cartId))}`);
});
