/** The workflows the processor app registers. Add yours here. */
import type { AnyWorkflow } from '@durable/core';
import { chaosChild, chaosExclusive, chaosTask } from './chaos.js';
import { delayedGreeting, reminder, scheduleGreeting } from './delayed-greeting.js';
import { eventBooking } from './event-booking.js';
import { expenseApproval } from './expense-approval.js';
import { customWorkflow } from './greet-many.js';
import { greetProto } from './greet-typed.js';
import { helloWorkflow } from './hello.js';
import { nap } from './nap.js';
import { orderProcessing } from './order-processing.js';
import { addTicket, checkout, removeTicket } from './ticket-cart.js';

export { customWorkflow, helloWorkflow, nap, orderProcessing };
// The examples' workflows (examples/README.md).
export { addTicket, checkout, delayedGreeting, eventBooking, expenseApproval, greetProto, reminder, removeTicket, scheduleGreeting };
// The workflows `make chaos` drives (scripts/chaos.ts).
export { CHAOS_DONE_KEY, chaosChild, chaosExclusive, chaosTask } from './chaos.js';
export type { ChaosMark, ChaosPlan } from './chaos.js';
export type { CartView, Order, TicketInput } from './ticket-cart.js';
export type { DelayedGreetingOutput, ScheduleGreetingOutput } from './delayed-greeting.js';
export type { Booking, BookingInput } from './event-booking.js';
export type { ApprovalDecision, ExpenseInput, ExpenseOutcome } from './expense-approval.js';
export type { GreetManyOutput } from './greet-many.js';
export type { OrderInput, OrderOutput } from './order-processing.js';

/** Every workflow of the processor app. */
export const workflows: AnyWorkflow[] = [
  helloWorkflow,
  customWorkflow,
  orderProcessing,
  greetProto,
  eventBooking,
  addTicket,
  removeTicket,
  checkout,
  scheduleGreeting,
  delayedGreeting,
  reminder,
  expenseApproval,
  nap,
  chaosTask,
  chaosExclusive,
  chaosChild,
];
