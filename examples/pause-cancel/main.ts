/**
 * pause-cancel: pause a sleeping workflow and resume it; cancel another.
 *
 *   make example-pause-cancel
 *
 * Both run `reminder`, which sleeps and then greets. While asleep an invocation is
 * `suspended`: its timer lives on JetStream and the processor holds nothing of it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { reminder } from '@durable/processor/workflows';
import { runExample } from '../shared/run-example.js';

const SHORT_SLEEP_MS = 2_000;

runExample(async ({ client }) => {
  const a = await client.submit(reminder, { name: 'paused', sleepMs: SHORT_SLEEP_MS });
  const b = await client.submit(reminder, { name: 'cancelled', sleepMs: 10 * 60_000 });
  await client.waitForStatus(a.invocationId, 'suspended');
  await client.waitForStatus(b.invocationId, 'suspended');
  console.log(`Both reminders are asleep (suspended): ${a.invocationId}, ${b.invocationId}`);

  // Pause A: it stays put even when its timer fires.
  await client.pause(a.invocationId);
  console.log(`Paused ${a.invocationId}: ${(await client.getState(a.invocationId))?.status}`);
  await sleep(SHORT_SLEEP_MS + 1_000);
  console.log(`Its sleep is over, and it is still ${(await client.getState(a.invocationId))?.status}`);

  // Resume A: the same invocation continues from its journal.
  await client.resume(a.invocationId);
  const resumed = await client.waitForResult(a.invocationId);
  console.log(`Resumed ${a.invocationId}: ${resumed.status}, output ${new TextDecoder().decode(resumed.currentState)}`);

  // Cancel B: a suspended invocation ends `cancelled` at once; it never greets.
  await client.cancel(b.invocationId);
  const cancelled = await client.waitForResult(b.invocationId);
  console.log(`Cancelled ${b.invocationId}: ${cancelled.status}`);
});
