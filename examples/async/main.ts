/**
 * async: submit a workflow, do something else, check on it later.
 *
 *   make example-async
 *
 * The invocation runs on the processor whether or not anyone waits: the client could
 * exit here and look it up tomorrow by its ID (`./bin/inspect <id>`).
 */
import type { GreetManyOutput } from '@durable/processor/workflows';
import { runExample } from '../shared/run-example.js';

runExample(async ({ client }) => {
  // submit returns once the command is stored on JetStream, before the workflow has run.
  const { invocationId } = await client.submit('custom_workflow', { names: ['Ada', 'Grace', 'Edsger'] });
  console.log(`Submitted custom_workflow: invocation ${invocationId}`);

  // Right after submitting, it may not have started yet (no state) or be running.
  const early = await client.getState(invocationId);
  console.log(`Status right after submitting: ${early?.status ?? 'not started yet'}`);

  console.log('Doing something else meanwhile...');

  // Later: wait for the outcome (returns at once when it has already ended).
  const state = await client.waitForResult(invocationId);
  const output = JSON.parse(new TextDecoder().decode(state.currentState)) as GreetManyOutput;
  console.log(`Status later: ${state.status}`);
  for (const greeting of output.greetings) console.log(`  ${greeting}`);
  const journal = await client.getJournal(invocationId);
  console.log(`Journal: ${journal.length} steps (${journal.map((e) => e.stepType).join(', ')})`);
});
