/**
 * The inspect app: reads execution states without the `nats` CLI.
 *
 *   inspect <invocation-id>   the state and journal of one invocation (the guide's Example 7)
 *   inspect ls [--status s] [--handler h] [--limit n] [--cursor c]
 *                             a page of invocations (default 50) from the execution index,
 *                             with their status and handler
 *   inspect stats [--handler h]   counts by status and by workflow
 *   inspect reindex           rebuilds the execution index from the states (reads them all)
 *   inspect watch             every state change as it happens, until Ctrl+C
 *   inspect purge <id>        removes an ended invocation now, with its journal and records
 *   inspect ui [--port p] [--host h]
 *                             serves the web console and the HTTP API on any cluster, without
 *                             a processor (default 127.0.0.1:8081; DURABLE_API_TOKEN as the processor)
 *
 * Env: NATS_URL and the credentials and TLS files of a secured cluster (NATS_USER,
 * NATS_PASSWORD, NATS_TOKEN, NATS_NKEY, NATS_CREDS, NATS_CA, NATS_CERT, NATS_KEY).
 */
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import {
  bytesToText,
  connectNats,
  createLogger,
  DurableClient,
  errorMessage,
  holdsWholeJournal,
  InvalidArgumentError,
  InvocationNotFoundError,
  apiTokenFromEnv,
  onShutdown,
  startHttpApi,
  type ExecutionState,
  type JournalEntry,
} from '@durable/core';

const logger = createLogger({ name: 'inspect' });
const USAGE = [
  'Usage: inspect <invocation-id>',
  '       inspect ls [--status <status>] [--handler <workflow>] [--limit <1-1000>] [--cursor <cursor>]',
  '       inspect stats [--handler <workflow>]',
  '       inspect reindex',
  '       inspect watch',
  '       inspect purge <invocation-id>',
  '       inspect ui [--port <port>] [--host <address>]',
].join('\n');

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '-h' || command === '--help') {
    process.stderr.write(`${USAGE}\n`);
    return command ? 0 : 2;
  }
  let flags: Flags;
  try {
    flags = parseFlags(command, rest);
    if (command === 'purge' && flags.id === undefined) throw new InvalidArgumentError('purge', 'name the invocation to remove: inspect purge <invocation-id>');
  } catch (err) {
    process.stderr.write(`${errorMessage(err)}\n${USAGE}\n`);
    return 2;
  }
  const nc = await connectNats({ name: 'durable-inspect', maxAttempts: 3, retryDelayMs: 1_000 });
  try {
    const client = await DurableClient.connect({ nc });
    if (command === 'ls') return await list(client, flags);
    if (command === 'stats') return await stats(client, flags);
    if (command === 'reindex') return await reindex(client);
    if (command === 'watch') return await watch(client);
    if (command === 'purge') return await purge(client, flags.id ?? '');
    if (command === 'ui') return await ui(client, flags);
    return await show(client, command);
  } catch (err) {
    if (!(err instanceof InvalidArgumentError)) throw err;
    process.stderr.write(`${errorMessage(err)}\n`);
    return 2;
  } finally {
    await nc.close().catch(() => undefined);
  }
}

async function show(client: DurableClient, id: string): Promise<number> {
  const state = await client.getState(id);
  if (!state) throw new InvocationNotFoundError(id);
  // A completed run's final state holds the whole journal when it fits; else it is read with the stream.
  const journal: readonly JournalEntry[] = holdsWholeJournal(state) ? state.journal : await client.getJournal(id);
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

type Flags = { status?: string; handler?: string; limit?: string; cursor?: string; id?: string; port?: string; host?: string };

/** The flags of `ls` and `stats`; other commands take none. */
function parseFlags(command: string, args: string[]): Flags {
  const options: ParseArgsConfig['options'] =
    command === 'ls'
      ? { status: { type: 'string' }, handler: { type: 'string' }, limit: { type: 'string' }, cursor: { type: 'string' } }
      : command === 'stats'
        ? { handler: { type: 'string' } }
        : command === 'ui'
          ? { port: { type: 'string' }, host: { type: 'string' } }
          : {};
  const parsed = parseArgs({ args, options, strict: true, allowPositionals: command === 'purge' });
  if (parsed.positionals.length > 1) throw new InvalidArgumentError(command, `one invocation ID, not ${parsed.positionals.length}`);
  return { ...(parsed.values as Flags), ...(parsed.positionals[0] !== undefined ? { id: parsed.positionals[0] } : {}) };
}

async function list(client: DurableClient, flags: Flags): Promise<number> {
  const limit = flags.limit === undefined ? undefined : Number(flags.limit);
  const page = await client.listWorkflows({
    ...(flags.status !== undefined ? { status: flags.status } : {}),
    ...(flags.handler !== undefined ? { handler: flags.handler } : {}),
    ...(limit !== undefined ? { limit } : {}),
    ...(flags.cursor !== undefined ? { cursor: flags.cursor } : {}),
  });
  for (const s of page.invocations) process.stdout.write(`${s.invocationId}  ${s.status.padEnd(9)}  ${s.handler}\n`);
  if (page.nextCursor) process.stderr.write(`More: inspect ls --cursor ${page.nextCursor} (with the same filters)\n`);
  return 0;
}

async function stats(client: DurableClient, flags: Flags): Promise<number> {
  const { total, byStatus, byHandler } = await client.getWorkflowStats(flags.handler !== undefined ? { handler: flags.handler } : {});
  const out = [`Invocations: ${total}`, 'By status:'];
  for (const [status, n] of Object.entries(byStatus)) out.push(`  ${`${status}:`.padEnd(11)} ${n}`);
  out.push('By handler:');
  for (const [handler, n] of Object.entries(byHandler)) out.push(`  ${handler}: ${n}`);
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

async function reindex(client: DurableClient): Promise<number> {
  process.stderr.write('Rebuilding the execution index from every state...\n');
  const { indexed, dropped } = await client.reindex();
  process.stdout.write(`Indexed ${indexed} invocations; removed ${dropped} entries without a state\n`);
  return 0;
}

async function purge(client: DurableClient, id: string): Promise<number> {
  await client.purge(id);
  process.stdout.write(`Removed ${id}: its state, journal, index entry, timers and awakeables\n`);
  return 0;
}

/** Port of `inspect ui` unless told: beside the processor's 8080. */
const DEFAULT_UI_PORT = 8081;

async function ui(client: DurableClient, flags: Flags): Promise<number> {
  const port = flags.port === undefined ? DEFAULT_UI_PORT : Number(flags.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError('--port', `${JSON.stringify(flags.port)} is not a port (0 to 65535)`);
  const token = apiTokenFromEnv();
  const http = await startHttpApi({
    client,
    logger,
    port,
    ...(flags.host !== undefined ? { host: flags.host } : {}),
    ...(token !== undefined ? { token } : {}),
    // The console's bundle lies beside this app's (dist/console, made by scripts/build.mjs).
    consoleDir: fileURLToPath(new URL('./console/', import.meta.url)),
  });
  logger.info({ port: http.port, host: http.host }, `Console at http://${http.host}:${http.port}/ui/ (Ctrl+C to stop)`);
  await new Promise<void>((resolve) => onShutdown(async () => resolve()));
  await http.close();
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
