/**
 * concurrent-workflows: submit many invocations at once, wait for all, print throughput.
 *
 *   make example-concurrent-workflows            # COUNT=500 make example-concurrent-workflows
 */
import { runExample } from '../shared/run-example.js';

const COUNT = Number(process.env.COUNT ?? 200);

runExample(async ({ client }) => {
  const started = performance.now();
  // One partition key each: invocations of one key run in order, one at a time; those
  // of different keys run side by side (up to the processor's --max-concurrent).
  const submissions = await Promise.all(
    Array.from({ length: COUNT }, (_, i) => client.submit('hello_workflow', { name: `user-${i}` }, { partitionKey: `user-${i}` })),
  );
  const submittedMs = performance.now() - started;
  console.log(`Submitted ${COUNT} invocations in ${submittedMs.toFixed(0)} ms`);

  const states = await Promise.all(submissions.map((s) => client.waitForResult(s.invocationId, { timeoutMs: 120_000 })));
  const elapsedS = (performance.now() - started) / 1000;
  const completed = states.filter((s) => s.status === 'completed').length;
  console.log(`Completed ${completed} of ${COUNT} in ${elapsedS.toFixed(2)} s: ${(completed / elapsedS).toFixed(0)} workflows/s`);
  if (completed !== COUNT) process.exitCode = 1;
});
