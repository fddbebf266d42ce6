/**
 * The client app: submits one invocation, prints how to track it, then waits for the
 * outcome and prints it with its journal.
 *
 *   client [--no-wait] [--timeout 30] [--id <invocation-id>] [--args '<json>']
 *
 * Env: HANDLER (default hello_workflow), PARTITION_KEY (default default), ARGS (JSON input,
 * default {"name":"World"}), SERVICE, NATS_URL and the credentials and TLS files of a
 * secured cluster (NATS_USER, NATS_PASSWORD, NATS_TOKEN, NATS_NKEY, NATS_CREDS, NATS_CA,
 * NATS_CERT, NATS_KEY).
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import {
  bytesToText,
  connectNats,
  createLogger,
  DurableClient,
  errorMessage,
  InvalidArgumentError,
  onShutdown,
  parseNumberFlag,
  type ExecutionState,
} from '@durable/core';

const logger = createLogger({ name: 'client' });

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      'no-wait': { type: 'boolean', default: false },
      timeout: { type: 'string' },
      id: { type: 'string' },
      args: { type: 'string', default: process.env.ARGS ?? '{"name":"World"}' },
    },
    strict: true,
  });
  const handler = process.env.HANDLER || 'hello_workflow';
  const partitionKey = process.env.PARTITION_KEY || 'default';
  const timeoutMs = parseNumberFlag('--timeout', values.timeout, 30) * 1_000;
  const input = parseInput(values.args ?? '');

  logger.info('Starting Durable Execution Client...');
  const nc = await connectNats({ name: 'durable-client', logger, maxAttempts: 5 });
  onShutdown(async () => {
    await nc.close();
  });
  try {
    const client = await DurableClient.connect({ nc });
    const id = values.id ?? randomUUID();
    logger.info('Submitting workflow:');
    logger.info(`  Invocation ID: ${id}`);
    logger.info(`  Handler: ${handler}`);
    logger.info(`  Partition Key: ${partitionKey}`);
    const submission = await client.submit(handler, input, {
      partitionKey,
      invocationId: id,
      service: process.env.SERVICE ?? 'HelloService',
    });
    if (submission.duplicate) {
      logger.info(`✓ Invocation ${id} was already submitted; it runs once`);
    } else {
      logger.info('✓ Command submitted successfully!');
    }
    logger.info(`Track execution with: nats kv get ${client.names.stateBucket} ${id}`);
    if (values['no-wait']) return 0;

    logger.info(`Waiting for the result (up to ${timeoutMs / 1000} s)...`);
    const state = await client.waitForResult(id, { timeoutMs });
    printOutcome(state);
    return state.status === 'completed' ? 0 : 1;
  } finally {
    await nc.close();
  }
}

function parseInput(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new InvalidArgumentError('ARGS', `${JSON.stringify(text)} is not JSON`);
  }
}

function printOutcome(state: ExecutionState): void {
  if (state.status === 'completed') {
    logger.info(`Execution completed: status=${state.status}`);
    logger.info(`  Output: ${bytesToText(state.currentState)}`);
  } else {
    logger.error(`Execution ${state.status}: ${state.error}`);
  }
  logger.info(`Journal: ${state.journalLength} entries`);
  for (const entry of state.journal) {
    const summary = entry.error !== '' ? `error: ${entry.error}` : bytesToText(entry.response);
    logger.info(`  Step ${entry.stepNumber}: ${entry.stepType} ${truncate(summary, 120)}`);
  }
  if (state.journal.length < state.journalLength) {
    logger.info(`  ... ${state.journalLength - state.journal.length} more in ${state.journalStream} ${state.journalSubject}`);
  }
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    logger.error(errorMessage(err));
    process.exit(err instanceof InvalidArgumentError ? 2 : 1);
  },
);
