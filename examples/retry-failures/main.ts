/**
 * retry-failures: find failed orders and resubmit them with corrected input.
 *
 *   make example-retry-failures
 *
 * `client.retry(id)` (or `POST /api/workflows/<id>/retry`) runs a failed invocation again
 * with the SAME input, under a new ID: right when the cause was outside the input (a
 * service that was down too long). Here the input itself is wrong, so the fix is a new
 * submission with corrected input, linked to the failed one by `retryOf`.
 */
import { orderProcessing, type OrderInput } from '@durable/processor/workflows';
import { runExample } from '../shared/run-example.js';

runExample(async ({ client }) => {
  const run = Date.now().toString(36);
  const orders: OrderInput[] = [
    { orderId: `order-${run}-1`, customer: 'Ada', amount: 30 },
    { orderId: `order-${run}-2`, customer: 'Grace', amount: -5 }, // invalid: fails for good
    { orderId: `order-${run}-3`, customer: 'Edsger', amount: 12 },
    { orderId: `order-${run}-4`, customer: 'Barbara', amount: 0 }, // invalid too
  ];
  const submitted = await Promise.all(orders.map((order) => client.submit(orderProcessing, order)));
  const states = await Promise.all(submitted.map((s) => client.waitForResult(s.invocationId)));

  // A TerminalError thrown by the workflow ends it `failed`, with the reason, at once.
  const failed = states.filter((s) => s.status === 'failed');
  console.log(`${states.length - failed.length} orders completed, ${failed.length} failed:`);
  for (const state of failed) console.log(`  ${state.invocationId} failed: ${state.error}`);

  for (const state of failed) {
    const input = orderProcessing.input.decode(state.input, 'order');
    const corrected: OrderInput = { ...input, amount: Math.abs(input.amount ?? 0) || 1 };
    // A new invocation with the corrected input; its state records which one it retries.
    const retry = await client.submit(orderProcessing, corrected, { retryOf: state.invocationId });
    const result = await client.waitForResult(retry.invocationId);
    console.log(`  resubmitted ${corrected.orderId} with amount ${corrected.amount} as ${retry.invocationId}: ${result.status} (retry of ${result.retryOf})`);
    if (result.status !== 'completed') process.exitCode = 1;
  }
});
