/**
 * The ticket-cart example: a shopping cart per cart ID, as three exclusive workflows
 * submitted with partition key = cart ID. Exclusive means the invocations of one cart run
 * one at a time, in the order submitted, and share the cart's keyed state (`ctx.get/set`),
 * which outlives each invocation: a virtual object per cart, with no database.
 */
import { defineWorkflow, TerminalError } from '@durable/core';

/** The cart's keyed state: the tickets reserved for it. */
const TICKETS = 'tickets';
/** The cart's keyed state: the last order it was checked out as. */
const LAST_ORDER = 'lastOrder';

/** Input of {@link addTicket} and {@link removeTicket}. */
export interface TicketInput {
  ticketId: string;
}

/** What a cart holds after an add or a remove. */
export interface CartView {
  cartId: string;
  tickets: string[];
  /** TicketService's answer, or why nothing changed. */
  message: string;
}

/** Output of {@link checkout}. */
export interface Order {
  orderId: string;
  cartId: string;
  tickets: string[];
}

interface ReserveResponse {
  success: boolean;
  message: string;
}

function ticketIdOf(input: TicketInput | undefined): string {
  const ticketId = input?.ticketId;
  if (typeof ticketId !== 'string' || ticketId === '') throw new TerminalError('ticketId is required');
  return ticketId;
}

/** Reserves a ticket with TicketService and puts it in the cart; a taken ticket is not added. */
export const addTicket = defineWorkflow<TicketInput, CartView>(
  'cart_add_ticket',
  async (ctx, input) => {
    const ticketId = ticketIdOf(input);
    const tickets = ctx.get<string[]>(TICKETS) ?? [];
    if (tickets.includes(ticketId)) return { cartId: ctx.partitionKey, tickets, message: `${ticketId} is already in the cart` };
    const reserved = await ctx.call<ReserveResponse>('TicketService', 'Reserve', { ticketId });
    if (!reserved.success) {
      ctx.log.info(`Cart ${ctx.partitionKey}: could not reserve ${ticketId}: ${reserved.message}`);
      return { cartId: ctx.partitionKey, tickets, message: reserved.message };
    }
    const next = [...tickets, ticketId];
    await ctx.set(TICKETS, next);
    ctx.log.info(`Cart ${ctx.partitionKey}: added ${ticketId} (${next.length} in the cart)`);
    return { cartId: ctx.partitionKey, tickets: next, message: reserved.message };
  },
  { exclusive: true, service: 'TicketService' },
);

/** Takes a ticket out of the cart and releases it with TicketService. */
export const removeTicket = defineWorkflow<TicketInput, CartView>(
  'cart_remove_ticket',
  async (ctx, input) => {
    const ticketId = ticketIdOf(input);
    const tickets = ctx.get<string[]>(TICKETS) ?? [];
    if (!tickets.includes(ticketId)) return { cartId: ctx.partitionKey, tickets, message: `${ticketId} is not in the cart` };
    await ctx.call('TicketService', 'Release', { ticketId });
    const next = tickets.filter((t) => t !== ticketId);
    await ctx.set(TICKETS, next);
    ctx.log.info(`Cart ${ctx.partitionKey}: removed ${ticketId} (${next.length} in the cart)`);
    return { cartId: ctx.partitionKey, tickets: next, message: `released ${ticketId}` };
  },
  { exclusive: true, service: 'TicketService' },
);

/** Turns the cart into an order and empties it. An empty cart fails (TerminalError). */
export const checkout = defineWorkflow<Record<string, never>, Order>(
  'cart_checkout',
  async (ctx) => {
    const tickets = ctx.get<string[]>(TICKETS) ?? [];
    if (tickets.length === 0) throw new TerminalError(`cart ${ctx.partitionKey} is empty`);
    // The order ID is journaled: a replay after a crash checks out under the same one.
    const order: Order = { orderId: await ctx.uuid(), cartId: ctx.partitionKey, tickets };
    await ctx.clear(TICKETS);
    await ctx.set(LAST_ORDER, order);
    ctx.log.info(`Cart ${ctx.partitionKey}: checked out ${tickets.length} tickets as order ${order.orderId}`);
    return order;
  },
  { exclusive: true },
);
