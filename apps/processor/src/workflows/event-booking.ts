/**
 * The multi-service example: one workflow calling two services in sequence, with a
 * journaled step between them. Each call is journaled once; after a crash the workflow
 * replays the calls already answered and only makes the rest.
 */
import { defineWorkflow, TerminalError } from '@durable/core';

/** Input of {@link eventBooking}. */
export interface BookingInput {
  guest: string;
  ticketId: string;
}

/** Output of {@link eventBooking}. */
export interface Booking {
  bookingRef: string;
  ticketId: string;
  welcome: string;
}

/** Reserves a ticket with TicketService, issues a booking reference, then welcomes the guest through HelloService. */
export const eventBooking = defineWorkflow<BookingInput, Booking>('event_booking', async (ctx, input) => {
  if (!input?.guest || !input.ticketId) throw new TerminalError('a booking needs a guest and a ticketId');
  // 1. TicketService: a taken ticket ends the booking for good (TerminalError: no retry).
  const reserved = await ctx.call<{ success: boolean; message: string }>('TicketService', 'Reserve', { ticketId: input.ticketId });
  if (!reserved.success) throw new TerminalError(reserved.message);
  ctx.log.info(`Booking for ${input.guest}: ${reserved.message}`);
  // 2. A side effect of our own, journaled: the same reference on every replay.
  const bookingRef = await ctx.run('issue booking reference', () => `BK-${input.ticketId}-${Date.now().toString(36)}`);
  // 3. HelloService.
  const { message } = await ctx.call<{ message: string }>('HelloService', 'SayHello', { name: input.guest });
  ctx.log.info(`Booking ${bookingRef} confirmed for ${input.guest}`);
  return { bookingRef, ticketId: input.ticketId, welcome: message };
});
