/**
 * multi-service: one workflow calling TicketService, then HelloService, in sequence.
 *
 * event_booking reserves a ticket, runs a step of its own, then greets the guest; each step
 * is journaled once. Prints the journal to show them.
 *
 *   make example-multi-service
 *
 * Needs HelloService (`make run-service`) and TicketService (`make run-ticket-service`).
 */
import { eventBooking } from '@durable/processor/workflows';
import { bytesToText } from '@durable/core';
import { runExample } from '../shared/run-example.js';

runExample(async ({ client }) => {
  // TicketService keeps reservations while it runs: a fresh ticket per run of the example.
  const ticketId = `GA-${Date.now().toString(36)}`;
  const { invocationId } = await client.submit(eventBooking, { guest: 'Ada', ticketId });
  const state = await client.waitForResult(invocationId);
  if (state.status !== 'completed') throw new Error(`event_booking ${state.status}: ${state.error}`);
  const booking = eventBooking.output.decode(state.currentState, 'booking');
  console.log(`Booked ${booking.ticketId} as ${booking.bookingRef}: ${booking.welcome}`);
  console.log('Journal, one entry per step:');
  for (const entry of await client.getJournal(invocationId)) {
    console.log(`  step ${entry.stepNumber}: ${entry.stepType} -> ${bytesToText(entry.response)}`);
  }
});
