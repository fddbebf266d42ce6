/**
 * The inspect app: reads execution states without the `nats` CLI.
 *
 *   inspect <invocation-id>   the state and journal of one invocation (the guide's Example 7)
 *   inspect ls                every invocation with its status and handler
 *   inspect watch             every state change as it happens, until Ctrl+C
 *
 * Env: NATS_URL.
 */
import {
  bytesToText,
  connectNats,
  createLogger,
  DurableClient,
  errorMessage,
  InvocationNotFoundError,
  onShutdown,
  type ExecutionState,
  type JournalEntry,
} from '@durable/core';

const logger = createLogger({ name: 'inspect' });
const USAGE = 'Usage: inspect <invocation-id> | inspect ls | inspect watch';

async function main(argv: string[]): Promise<number> {
  const [command] = argv;
  if (!command || command === '-h' || command === '--help') {
    process.stderr.write(`${USAGE}\n`);
    return command ? 0 : 2;
  }
  const nc = await connectNats({ name: 'durable-inspect', maxAttempts: 3, retryDelayMs: 1_000 });
  try {
    const client = await DurableClient.connect({ nc });
    if (command === 'ls') return await list(client);
    if (command === 'watch') return await watch(client);
    return await show(client, command);
  } finally {
    await nc.close().catch(() => undefined);
  }
}

async function show(client: DurableClient, id: string): Promise<number> {
  const state = await client.getState(id);
  if (!state) throw new InvocationNotFoundError(id);
  // While it runs, or past what the final state holds, the journal stream has every entry.
  const journal: readonly JournalEntry[] =
    state.journal.length < state.journalLength || state.status === 'running' || state.status === 'suspended'
      ? await client.getJournal(id)
      : state.journal;
  const out: string[] = [
    'Execution State:',
    `  Invocation ID: ${state.invocationId}`,
    `  Handler: ${state.handler}`,
    `  Status: ${state.status}`,
  ];
  if (state.partitionKey) out.push(`  Partition Key: ${state.partitionKey}`);
  if (state.error) out.push(`  Error: ${state.error}`);
  if (state.currentState.length > 0) out.push(`  Output: ${summary(state.currentState)}`);
  out.push(`  Journal Entries: ${journal.length}`, '', 'Journal:');
  for (const entry of journal) {
    out.push(`  Step ${entry.stepNumber}: ${entry.stepType}`);
    if (entry.response.length > 0) out.push(`    Response: ${summary(entry.response)}`);
    if (entry.attempts > 1) out.push(`    Attempts: ${entry.attempts}`);
    if (entry.error !== '') out.push(`    Error: ${entry.error}`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

async function list(client: DurableClient): Promise<number> {
  for (const id of await client.listInvocationIds()) {
    const state = await client.getState(id);
    if (state) process.stdout.write(`${id}  ${state.status.padEnd(9)}  ${state.handler}\n`);
  }
  return 0;
}

async function watch(client: DurableClient): Promise<number> {
  const stop = new AbortController();
  onShutdown(async () => stop.abort());
  process.stderr.write('Watching execution states (Ctrl+C to stop)...\n');
  await client.watch((state: ExecutionState) => {
    const detail = state.error ? `  ${state.error}` : '';
    process.stdout.write(`${state.invocationId}  ${state.status.padEnd(9)}  ${state.handler}${detail}\n`);
  }, stop.signal);
  return 0;
}

function summary(bytes: Uint8Array): string {
  const text = bytesToText(bytes);
  return text.length > 200 ? `${text.slice(0, 199)}…` : text;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    logger.error(errorMessage(err));
    process.exit(1);
  },
);
