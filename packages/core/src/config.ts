/**
 * Names and defaults shared by every process of the engine: where commands, journals and
 * states live on JetStream, and how the apps find the cluster.
 */
import { createHash } from 'node:crypto';
import { InvalidArgumentError } from './errors.js';

/** All three nodes of the local cluster, so every app survives the loss of one. */
export const DEFAULT_NATS_URL = 'nats://localhost:4222,nats://localhost:4223,nats://localhost:4224';

/** The servers to connect to: `NATS_URL` (comma-separated) or the local 3-node cluster. */
export function natsServers(url: string | undefined = process.env.NATS_URL): string[] {
  const value = url && url.trim() !== '' ? url : DEFAULT_NATS_URL;
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** The JetStream resources and subjects of one engine deployment. */
export interface EngineNames {
  /** Work-queue stream of commands. */
  commandsStream: string;
  /** Subject prefix of commands: a command for key `k` goes to `<prefix>.k`. */
  commandsSubject: string;
  /** Key-value bucket holding one ExecutionState per invocation, and nothing else. */
  stateBucket: string;
  /** Stream of journal entries, one subject per invocation. */
  journalStream: string;
  /** Subject prefix of journals: invocation `id` appends to `<prefix>.id`. */
  journalSubject: string;
  /** Stream keeping commands that could not be decoded, for an operator to look at. */
  deadLetterStream: string;
  deadLetterSubject: string;
  /** Core NATS subject prefix on which the outcome of invocation `id` is announced. */
  resultSubject: string;
  /** Subject prefix of the durable timers: scheduled messages in the commands stream, see `nats/timers.ts`. */
  timersSubject: string;
  /** Core NATS subject prefix on which cancel or pause of invocation `id` is requested (payload `cancel` or `pause`). */
  controlSubject: string;
  /** Key-value bucket of awakeables, by awakeable ID. */
  awakeablesBucket: string;
  /** Stream of the execution index: the newest status of each invocation, for listing and counting. */
  indexStream: string;
  /** Subject prefix of the index: `<prefix>.<status>.<handler token>.<invocation id>`, see `nats/execution-index.ts`. */
  indexSubject: string;
  /** Key-value bucket of the handler names seen, so counts per handler need no scan. */
  handlersBucket: string;
  /** Key-value bucket of the shared state and lock of each partition key (exclusive workflows). */
  keyedStateBucket: string;
  /** Stream of the partition keys' queues: one message per waiting invocation, oldest first. */
  keyedQueueStream: string;
  /** Subject prefix of the queues: invocation `id` waits for key `k` on `<prefix>.<record key of k>.<id>`. */
  keyedQueueSubject: string;
  /** Key-value bucket of live processors: one heartbeat record each, to share the partitions. */
  processorsBucket: string;
  /** Core NATS subject prefix on which processor `id` answers pings at `<prefix>.<id>`. */
  processorsSubject: string;
}

/**
 * The names of a deployment. The default namespace gives the guide's names (`COMMANDS`,
 * `commands.>`, `EXECUTION_STATE`); another namespace prefixes every name, so several
 * deployments (or test suites) can share one cluster without seeing each other.
 */
export function engineNames(namespace = ''): EngineNames {
  if (namespace !== '' && !/^[A-Za-z0-9_-]+$/.test(namespace)) {
    throw new InvalidArgumentError('namespace', `"${namespace}" may contain only letters, digits, '-' and '_'`);
  }
  const upper = namespace === '' ? '' : `${namespace.toUpperCase()}_`;
  const lower = namespace === '' ? '' : `${namespace}.`;
  return {
    commandsStream: `${upper}COMMANDS`,
    commandsSubject: `${lower}commands`,
    stateBucket: `${upper}EXECUTION_STATE`,
    journalStream: `${upper}JOURNAL`,
    journalSubject: `${lower}journal`,
    deadLetterStream: `${upper}DEAD_LETTERS`,
    deadLetterSubject: `${lower}dead.commands`,
    resultSubject: `${lower}durable.result`,
    timersSubject: `${lower}timers`,
    controlSubject: `${lower}durable.control`,
    awakeablesBucket: `${upper}AWAKEABLES`,
    indexStream: `${upper}EXECUTION_INDEX`,
    indexSubject: `${lower}index`,
    handlersBucket: `${upper}EXECUTION_HANDLERS`,
    keyedStateBucket: `${upper}KEYED_STATE`,
    keyedQueueStream: `${upper}KEYED_QUEUE`,
    keyedQueueSubject: `${lower}keyedq`,
    processorsBucket: `${upper}PROCESSORS`,
    processorsSubject: `${lower}durable.processors`,
  };
}

/** Partition keys become one subject token, so they may not hold `.`, `*`, `>` or whitespace. */
const PARTITION_KEY = /^[^\s.*>]{1,256}$/;

/**
 * Checks a partition key, which becomes the last token of the command's subject.
 * Keys are rejected rather than encoded so the subject stays readable in `nats` tools.
 * @throws InvalidArgumentError naming what is wrong.
 */
export function checkPartitionKey(key: string): string {
  if (!PARTITION_KEY.test(key) || hasControlCharacter(key)) {
    throw new InvalidArgumentError(
      'partition key',
      `${JSON.stringify(key)} must be 1 to 256 characters without spaces, control characters, '.', '*' or '>'`,
    );
  }
  return key;
}

/** Invocation IDs become a subject token and a KV key: letters, digits, `-`, `_`, `=`. */
const INVOCATION_ID = /^[A-Za-z0-9_=-]{1,128}$/;
/**
 * IDs the engine derives for the invocations a workflow starts: the sender's ID and the
 * step, joined by `/`, which a chosen ID may not contain (see {@link derivedInvocationId}).
 */
const ANY_INVOCATION_ID = /^(?=.{1,128}$)[A-Za-z0-9_=-]+(?:\/[0-9]+)*$/;

/**
 * Checks an invocation ID a user chose, which becomes a KV key and a subject token. `/`
 * is left to the IDs the engine derives, so a chosen ID never takes one of theirs.
 * @throws InvalidArgumentError naming what is wrong.
 */
export function checkInvocationId(id: string): string {
  if (!INVOCATION_ID.test(id)) {
    throw new InvalidArgumentError(
      'invocation ID',
      `${JSON.stringify(id)} must be 1 to 128 characters of letters, digits, '-', '_' or '=' ('/' marks the IDs the engine derives)`,
    );
  }
  return id;
}

/**
 * Checks an invocation ID on the wire: one a user chose, or one the engine derived.
 * @throws InvalidArgumentError naming what is wrong.
 */
export function checkAnyInvocationId(id: string): string {
  if (!ANY_INVOCATION_ID.test(id)) {
    throw new InvalidArgumentError('invocation ID', `${JSON.stringify(id)} is neither a chosen ID nor one the engine derives (<id>/<step>)`);
  }
  return id;
}

/**
 * The ID of the invocation started by `step` of another (`send`, `invoke`): the same on
 * every replay, which is what makes a journaled send start exactly one invocation, and of
 * a form no chosen ID has (`<sender id>/<step>`). A sender ID too long for it is replaced
 * by its hash, keeping the form.
 */
export function derivedInvocationId(senderId: string, step: number): string {
  const id = `${senderId}/${step}`;
  return id.length <= 128 ? id : `${createHash('sha256').update(senderId).digest('base64url')}/${step}`;
}

function hasControlCharacter(s: string): boolean {
  for (const ch of s) {
    const code = ch.codePointAt(0) ?? 0;
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}
