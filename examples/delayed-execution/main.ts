/**
 * delayed-execution: a scheduler workflow sends a greeting that starts later.
 *
 * schedule_greeting starts delayed_greeting with `ctx.send(..., { delay })` and ends at once.
 * The wait is a durable timer on JetStream: no process holds it, and it fires even if every
 * processor restarted meanwhile.
 *
 *   make example-delayed-execution          # DELAY_MS=10000 to wait longer
 */
import { delayedGreeting, scheduleGreeting } from '@durable/processor/workflows';
import { runExample } from '../shared/run-example.js';

const DELAY_MS = Number(process.env.DELAY_MS ?? 3_000);

runExample(async ({ client }) => {
  const scheduled = await client.invoke(scheduleGreeting, { name: 'Later', delayMs: DELAY_MS });
  console.log(`schedule_greeting ended; greeting ${scheduled.greetingId} is due in ${DELAY_MS} ms`);

  // Nothing of the greeting exists yet but its timer.
  const before = await client.getState(scheduled.greetingId);
  console.log(`greeting status now: ${before?.status ?? 'not started (waiting on its timer)'}`);

  const state = await client.waitForResult(scheduled.greetingId, { timeoutMs: DELAY_MS + 30_000 });
  const greeting = delayedGreeting.output.decode(state.currentState, 'greeting');
  console.log(`greeting ${state.status} ${greeting.ranAtMs - greeting.scheduledAtMs} ms after it was scheduled: ${greeting.message}`);
});
