/**
 * query-api: list invocations by status and workflow, page through them, count them.
 *
 *   make example-query-api
 *
 * Neither listing nor counting reads every execution: both come from the execution index
 * (one small message per invocation on `index.<status>.<handler>.<id>`), and counts are
 * kept by the NATS server per subject (README, "Query").
 */
import { orderProcessing } from '@durable/processor/workflows';
import { httpJson, requireProcessor, runExample } from '../shared/run-example.js';

runExample(async ({ client }) => {
  await requireProcessor();
  const run = Date.now().toString(36);
  // Some work to find: three greetings, and two orders whose amount makes them fail.
  const greetings = ['Ada', 'Grace', 'Edsger'].map((name) => client.submit('hello_workflow', { name }));
  const orders = [-5, 0].map((amount, i) => client.submit(orderProcessing, { orderId: `order-${run}-${i}`, customer: 'Query', amount }));
  const submitted = await Promise.all([...greetings, ...orders]);
  await Promise.all(submitted.map((s) => client.waitForResult(s.invocationId)));
  const mine = new Set(submitted.map((s) => s.invocationId));

  // Failed orders, one per page, following the cursor: each page reads at most `limit`
  // index entries and checks each one against its state.
  console.log('Failed order_processing invocations, one page at a time:');
  let cursor: string | undefined;
  let page = 0;
  do {
    const result = await client.listWorkflows({ status: 'failed', handler: 'order_processing', limit: 1, ...(cursor ? { cursor } : {}) });
    for (const s of result.invocations) {
      page++;
      console.log(`  page ${page}: ${s.invocationId} ${s.status}${mine.has(s.invocationId) ? ' (this run)' : ''}`);
    }
    cursor = result.nextCursor;
  } while (cursor);

  // Counts by status and by workflow, counted by the server.
  const stats = await client.getWorkflowStats();
  console.log(`Stats: ${stats.total} invocations in all`);
  console.log(`  by status: ${Object.entries(stats.byStatus).filter(([, n]) => n > 0).map(([s, n]) => `${s}=${n}`).join(' ')}`);
  console.log(`  hello_workflow: ${stats.byHandler.hello_workflow ?? 0}, order_processing: ${stats.byHandler.order_processing ?? 0}`);

  // The same over HTTP: GET /api/workflows, following next_cursor.
  let listed = 0;
  let next: string | undefined;
  do {
    const query = `status=failed&handler=order_processing&limit=100${next ? `&cursor=${encodeURIComponent(next)}` : ''}`;
    const body = await httpJson<{ invocations: { invocation_id: string }[]; next_cursor?: string }>('GET', `/api/workflows?${query}`);
    listed += body.invocations.filter((s) => mine.has(s.invocation_id)).length;
    next = body.next_cursor;
  } while (next);
  console.log(`GET /api/workflows?status=failed&handler=order_processing: ${listed} of this run's 2 failed orders listed`);
  const httpStats = await httpJson<{ total: number }>('GET', '/api/workflows/stats?handler=order_processing');
  console.log(`GET /api/workflows/stats?handler=order_processing: total ${httpStats.total}`);
});
