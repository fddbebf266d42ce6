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
export const PARTITION_KEY = /^[^\s.*>]{1,256}$/;

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
export const INVOCATION_ID = /^[A-Za-z0-9_=-]{1,128}$/;
/**
 * IDs the engine derives for the invocations a workflow starts: the sender's ID and the
 * step, joined by `/`, which a chosen ID may not contain (see {@link derivedInvocationId}).
 */
export const ANY_INVOCATION_ID = /^(?=.{1,128}$)[A-Za-z0-9_=-]+(?:\/[0-9]+)*$/;

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

/** The form of `awakeableId()` in engine/durable-context.ts: the step that made it, then its invocation's ID. */
export const AWAKEABLE_ID = new RegExp(`^awk_[0-9]{1,10}_${ANY_INVOCATION_ID.source.slice(1)}`);

/**
 * Checks an awakeable ID on the wire (`awk_<step>_<invocation ID>`, as `ctx.awakeable()`
 * hands it out), which becomes a KV key.
 * @throws InvalidArgumentError naming what is wrong.
 */
export function checkAwakeableId(id: string): string {
  if (!AWAKEABLE_ID.test(id)) {
    throw new InvalidArgumentError('awakeable ID', `${JSON.stringify(id)} is not an awakeable ID (awk_<step>_<invocation ID>, as ctx.awakeable() gives it)`);
  }
  return id;
}

/** Workflow names, which name KV keys and index subjects: letters, digits, `_`, `.`, `-`. */
export const WORKFLOW_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/**
 * Checks a workflow name, as `defineWorkflow` takes it and the HTTP API's paths and queries carry it.
 * @throws InvalidArgumentError naming what is wrong.
 */
export function checkWorkflowName(name: string): string {
  if (!WORKFLOW_NAME.test(name)) {
    throw new InvalidArgumentError('workflow name', `${JSON.stringify(name)} must be 1 to 128 letters, digits, '_', '.' or '-'`);
  }
  return name;
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

/** Milliseconds per unit of a written duration, longest first (how {@link formatDuration} writes them). */
const DURATION_UNITS_MS: ReadonlyMap<string, number> = new Map([
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1_000],
  ['ms', 1],
]);
/** Numbers each with a unit; `ms` before `m`, so that `90ms` is not read as 90 minutes and an `s`. */
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|d|h|m|s))+$/;
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|d|h|m|s)/g;

/**
 * Reads a duration: a whole number of milliseconds (`1500`), or numbers each with a unit
 * `d`, `h`, `m`, `s` or `ms`, one after another (`7d`, `24h`, `90m`, `1h30m`, `30s`, `1.5s`).
 * `0` is zero; what it means (often "keep forever") is the caller's to say.
 *
 * @example
 * parseDuration('7d', '--dead-letter-retention'); // 604_800_000
 * @param what names the value in the error, e.g. the flag it came from.
 * @returns whole milliseconds.
 * @throws InvalidArgumentError naming `what` and the value.
 */
export function parseDuration(text: string, what = 'duration'): number {
  const value = text.trim();
  let ms = Number.NaN;
  if (/^\d+$/.test(value)) ms = Number(value);
  else if (DURATION.test(value)) {
    ms = 0;
    for (const [, amount, unit] of value.matchAll(DURATION_PART)) ms += Number(amount) * (DURATION_UNITS_MS.get(unit ?? '') ?? Number.NaN);
  }
  if (!Number.isSafeInteger(Math.round(ms))) {
    throw new InvalidArgumentError(
      what,
      `${JSON.stringify(text)} is not a duration: write milliseconds (1500) or numbers with a unit d, h, m, s or ms (7d, 24h, 90m, 1h30m, 30s)`,
    );
  }
  return Math.round(ms);
}

/** Writes milliseconds the way {@link parseDuration} reads them: `7d`, `1h30m`, `250ms`, `0`. */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms <= 0) return String(ms);
  let rest = ms;
  let text = '';
  for (const [unit, size] of DURATION_UNITS_MS) {
    const count = Math.floor(rest / size);
    if (count > 0) text += `${count}${unit}`;
    rest -= count * size;
  }
  return text;
}

function hasControlCharacter(s: string): boolean {
  for (const ch of s) {
    const code = ch.codePointAt(0) ?? 0;
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}
