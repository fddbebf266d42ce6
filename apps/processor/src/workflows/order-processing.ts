/**
 * The guide's `HANDLER=order_processing` example: a few journaled steps around a call.
 */
import { defineWorkflow, TerminalError } from '@durable/core';

/** Input of {@link orderProcessing}. */
export interface OrderInput {
  orderId?: string;
  customer?: string;
  amount?: number;
}

/** Output of {@link orderProcessing}. */
export interface OrderOutput {
  orderId: string;
  confirmation: string;
  receipt: string;
}

/** Validates an order, greets its customer and issues a receipt; each step journaled once. */
export const orderProcessing = defineWorkflow<OrderInput, OrderOutput>(
  'order_processing',
  async (ctx, input) => {
    const order = await ctx.run('validate order', () => {
      const amount = input?.amount ?? 42;
      if (!(amount > 0)) throw new TerminalError(`order amount must be positive, got ${amount}`);
      return { orderId: input?.orderId ?? ctx.partitionKey, customer: input?.customer ?? 'World', amount };
    });
    const { message } = await ctx.call<{ message: string }>('HelloService', 'SayHello', { name: order.customer });
    const receipt = await ctx.uuid();
    ctx.log.info(`Order ${order.orderId} processed: receipt=${receipt}`);
    return { orderId: order.orderId, confirmation: message, receipt };
  },
  { service: 'HelloService' },
);
