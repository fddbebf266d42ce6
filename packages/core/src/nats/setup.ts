/**
 * Creates the engine's streams, bucket and consumer where missing. Idempotent and safe
 * when several processors start at once: whoever creates a resource first wins and the
 * others use it as it is.
 */
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstreamManager,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { setTimeout as wait } from 'node:timers/promises';
import { engineNames, type EngineNames } from '../config.js';
import { ConnectionError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';

/** Options of {@link setupEngine}. */
export interface SetupOptions {
  /** Prefixes every name, see {@link engineNames}. @default '' */
  namespace?: string;
  /** Replicas of every stream and bucket. @default 3 on a cluster, 1 on a single server */
  replicas?: number;
  /** Durable consumer the processors share. @default 'processor-1' */
  consumerName?: string;
  /** How long a delivered command may stay unacknowledged, seconds. @default 30 */
  ackWaitSeconds?: number;
  /** Commands in flight at once (the consumer's max ack pending). @default 100 */
  maxConcurrent?: number;
  /** Where the guide's setup lines go. */
  logger?: Logger;
}

/** The resources {@link setupEngine} made sure of. */
export interface EngineResources {
  names: EngineNames;
  jsm: JetStreamManager;
  stateKv: KV;
  awakeablesKv: KV;
  keyedStateKv: KV;
  replicas: number;
  consumerName: string;
}

const DUPLICATE_WINDOW_NS = 5 * 60 * 1e9;

const NS_PER_S = 1e9;

/** Creates whatever of the engine's JetStream resources is missing. */
export async function setupEngine(nc: NatsConnection, options: SetupOptions = {}): Promise<EngineResources> {
  const names = engineNames(options.namespace);
  const replicas = options.replicas ?? (nc.info?.cluster ? 3 : 1);
  const consumerName = options.consumerName ?? 'processor-1';
  const log = options.logger;
  const jsm = await jetstreamManager(nc);

  log?.info('Setting up JetStream streams...');
  const commands: Partial<StreamConfig> & { name: string } = {
    name: names.commandsStream,
    // The durable timers are scheduled messages in the same stream: a schedule's target
    // must be a subject of its own stream (see `timers.ts`).
    subjects: [`${names.commandsSubject}.>`, `${names.timersSubject}.>`],
    allow_msg_schedules: true,
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    num_replicas: replicas,
    // No max age: an unprocessed command is never dropped by the stream.
    duplicate_window: DUPLICATE_WINDOW_NS,
    discard: DiscardPolicy.Old,
  };
  await ensureStream(jsm, commands);
  await allowTimers(nc, jsm, commands);
  await ensureStream(jsm, {
    name: names.journalStream,
    subjects: [`${names.journalSubject}.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: replicas,
    allow_direct: true,
  });
  await ensureStream(jsm, {
    name: names.deadLetterStream,
    subjects: [`${names.deadLetterSubject}.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: replicas,
  });
  // Commands only: the timers wait in the stream, seen by no consumer until they fire.
  await ensureConsumer(jsm, names.commandsStream, consumerName, { ...options, filterSubject: `${names.commandsSubject}.>` });
  await ensureIndexResources(nc, jsm, names, replicas);

  log?.info('Setting up KV buckets...');
  const stateKv = await withMetaRetry(`bucket ${names.stateBucket}`, () =>
    new Kvm(nc).create(names.stateBucket, { history: 10, replicas, storage: StorageType.File }),
  );
  const awakeablesKv = await withMetaRetry(`bucket ${names.awakeablesBucket}`, () =>
    new Kvm(nc).create(names.awakeablesBucket, { history: 1, replicas, storage: StorageType.File }),
  );
  const keyedStateKv = await withMetaRetry(`bucket ${names.keyedStateBucket}`, () =>
    new Kvm(nc).create(names.keyedStateBucket, { history: 5, replicas, storage: StorageType.File }),
  );
  return { names, jsm, stateKv, awakeablesKv, keyedStateKv, replicas, consumerName };
}

/**
 * The execution index's stream and handlers bucket (see `execution-index.ts`): one message
 * per subject, so a status change needs one purge and a same-status write none.
 */
export async function ensureIndexResources(nc: NatsConnection, jsm: JetStreamManager, names: EngineNames, replicas: number): Promise<void> {
  await ensureStream(jsm, {
    name: names.indexStream,
    subjects: [`${names.indexSubject}.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: replicas,
    max_msgs_per_subject: 1,
  });
  await withMetaRetry(`bucket ${names.handlersBucket}`, () =>
    new Kvm(nc).create(names.handlersBucket, { history: 1, replicas, storage: StorageType.File }),
  );
}

/** Creates a stream if it does not exist; an existing one is used as it is. */
async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  await withMetaRetry(`stream ${config.name}`, async () => {
    try {
      await jsm.streams.info(config.name);
      return;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    try {
      await jsm.streams.add(config);
    } catch (err) {
      // Another processor created it between our look and our add.
      if (!isAlreadyInUse(err)) throw err;
    }
  });
}

/**
 * A COMMANDS stream made before the timers moved into it (from a stream of their own) gets
 * their subjects and message schedules.
 * @throws ConnectionError when the server keeps no message schedules (before nats-server 2.12).
 */
async function allowTimers(nc: NatsConnection, jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  const subjects = config.subjects ?? [];
  const allowed = await withMetaRetry(`timers on stream ${config.name}`, async () => {
    const info = await jsm.streams.info(config.name);
    if (info.config.allow_msg_schedules === true && subjects.every((s) => info.config.subjects.includes(s))) return true;
    const updated = await jsm.streams.update(config.name, { ...info.config, subjects, allow_msg_schedules: true });
    return updated.config.allow_msg_schedules === true;
  });
  // An older server ignores the setting: its timers would never fire.
  if (!allowed) {
    throw new ConnectionError(`stream ${config.name} keeps no message schedules: durable timers need nats-server 2.12 or newer (this one is ${nc.info?.version ?? 'unknown'})`);
  }
}

/**
 * Creates the shared durable pull consumer, or brings its filter, ack wait and concurrency
 * to the given values. No max deliver: the processor counts attempts itself and records a
 * failure with its reason, where a server-side limit would drop the command silently.
 */
async function ensureConsumer(jsm: JetStreamManager, stream: string, name: string, options: SetupOptions & { filterSubject: string }): Promise<void> {
  const ackWait = (options.ackWaitSeconds ?? 30) * NS_PER_S;
  const maxAckPending = options.maxConcurrent ?? 100;
  const filter = options.filterSubject;
  await withMetaRetry(`consumer ${name}`, async () => {
    try {
      const info = await jsm.consumers.info(stream, name);
      if (info.config.ack_wait !== ackWait || info.config.max_ack_pending !== maxAckPending || info.config.filter_subject !== filter) {
        await jsm.consumers.update(stream, name, { ack_wait: ackWait, max_ack_pending: maxAckPending, filter_subject: filter });
      }
      return;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    try {
      await jsm.consumers.add(stream, {
        durable_name: name,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        filter_subject: filter,
        ack_wait: ackWait,
        max_deliver: -1,
        max_ack_pending: maxAckPending,
      });
    } catch (err) {
      if (!isAlreadyInUse(err)) throw err;
    }
  });
}

/**
 * Retries until the deadline, then gives up with a clear error. Just after a cluster
 * starts, and on a loaded machine, JetStream answers "not enabled", "no suitable peers for
 * placement" or nothing at all for a few seconds before its meta leader settles; these
 * look like configuration errors but pass, so every error is retried.
 */
async function withMetaRetry<T>(what: string, fn: () => Promise<T>, deadlineMs = 30_000): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw new ConnectionError(`could not set up ${what}: ${errorMessage(err)}`, { cause: err });
      await wait(250);
    }
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === 10059 || err.code === 10014);
}

function isAlreadyInUse(err: unknown): boolean {
  // 10058: stream name in use; 10148: consumer already exists; 10013: consumer name in use.
  return err instanceof JetStreamApiError && [10058, 10148, 10013].includes(err.code);
}
