/**
 * approval-workflow: an expense awaits approval (awakeable raced with a timeout), resolved over HTTP.
 *
 * Prints the curl command a manager would run, then resolves the awakeable itself over the
 * same HTTP route, so it runs unattended. A second expense with a short timeout shows the
 * other branch of the race.
 *
 *   make example-approval-workflow
 */
import { expenseApproval, type ExpenseOutcome } from '@durable/processor/workflows';
import type { DurableClient } from '@durable/core';
import { AUTH_HEADERS, httpJson, runExample } from '../shared/run-example.js';

runExample(async ({ client, httpUrl }) => {
  const expense = await client.submit(expenseApproval, { employee: 'Ada', amount: 120, description: 'conference ticket' });
  const unanswered = await client.submit(expenseApproval, { employee: 'Grace', amount: 80, timeoutMs: 2_000 });

  // Waiting on the awakeable, the invocation is suspended: nothing of it in memory.
  await client.waitForStatus(expense.invocationId, 'suspended');
  const awakeableId = await awakeableOf(client, expense.invocationId);
  console.log(`Expense ${expense.invocationId} is waiting for approval. A manager approves it with:`);
  // With a token, the command names its variable, never its value.
  const auth = AUTH_HEADERS.authorization ? ' -H "Authorization: Bearer $DURABLE_API_TOKEN"' : '';
  console.log(`  curl -X POST ${httpUrl}/api/awakeables/${awakeableId}/resolve${auth} -d '{"result": {"approved": true, "approver": "Lin"}}'`);

  console.log('Approving it over HTTP...');
  await httpJson('POST', `/api/awakeables/${awakeableId}/resolve`, { result: { approved: true, approver: 'Lin', comment: 'ok' } });
  const approved = await client.waitForResult(expense.invocationId);
  console.log(`Expense ${expense.invocationId}: ${describe(expenseApproval.output.decode(approved.currentState, 'outcome'))}`);

  // Nobody answers the second one: the timeout wins the race.
  const timedOut = await client.waitForResult(unanswered.invocationId);
  console.log(`Expense ${unanswered.invocationId}: ${describe(expenseApproval.output.decode(timedOut.currentState, 'outcome'))}`);
});

/** The ID of the awakeable an invocation waits on, from its journal (`AWAKEABLE:<id>`). */
async function awakeableOf(client: DurableClient, invocationId: string): Promise<string> {
  const entry = (await client.getJournal(invocationId)).find((e) => e.stepType.startsWith('AWAKEABLE:'));
  if (!entry) throw new Error(`invocation ${invocationId} waits on no awakeable`);
  return entry.stepType.slice('AWAKEABLE:'.length);
}

function describe(outcome: ExpenseOutcome): string {
  return `${outcome.status}${outcome.approver ? ` by ${outcome.approver}` : ''} (${outcome.employee}, ${outcome.amount})`;
}
