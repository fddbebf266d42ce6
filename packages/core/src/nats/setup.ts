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
  type ConsumerConfig,
  type StreamConfig,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { setTimeout as wait } from 'node:timers/promises';
import { engineNames, type EngineNames } from '../config.js';
import { ConfigurationError, ConnectionError, errorMessage } from '../errors.js';
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
  /**
   * Partitions of the command stream, fixed when the stream is created (a processor joining
   * later reads the stream's own count). @default 16
   */
  partitions?: number;
  /** Where the guide's setup lines go. */
  logger?: Logger;
}

/** The resources {@link setupEngine} made sure of. */
export interface EngineResources {
  names: EngineNames;
  jsm: JetStreamManager;
  /** The buckets the engine decides from, read from their stream's leader (read-after-write). */
  stateKv: KV;
  awakeablesKv: KV;
  keyedStateKv: KV;
  replicas: number;
  consumerName: string;
  /** Partitions of the command stream: partition `p` is consumed by `partitionConsumer(consumerName, p)`. */
  partitions: number;
  /** Live processors, one heartbeat record each (see `processor/membership.ts`). */
  processorsKv: KV;
}

const DUPLICATE_WINDOW_NS = 5 * 60 * 1e9;

/** How long a processor's record outlives its last renewal (dead processors' records go), ms. */
const PROCESSOR_RECORD_TTL_MS = 60_000;
/** Default number of command partitions. */
export const DEFAULT_PARTITIONS = 16;
/** The priority group whose one pinned client owns a partition. */
export const OWNER_GROUP = 'owner';
/**
 * How long a partition's pinned processor may go without pulling before the server pins
 * another one, ns: a stalled or dead owner loses its partition this soon.
 */
const PIN_TIMEOUT_NS = 4 * 1e9;
/** Most commands of one partition delivered and not yet acknowledged (running or waiting for their key). */
export const MAX_PARTITION_IN_FLIGHT = 1_000;

/** The durable consumer of partition `p`. */
export function partitionConsumer(consumerName: string, partition: number): string {
  return `${consumerName}-p${partition}`;
}

const NS_PER_S = 1e9;

/** Creates whatever of the engine's JetStream resources is missing. */
export async function setupEngine(nc: NatsConnection, options: SetupOptions = {}): Promise<EngineResources> {
  const names = engineNames(options.namespace);
  const replicas = options.replicas ?? (nc.info?.cluster ? 3 : 1);
  const consumerName = options.consumerName ?? 'processor-1';
  const log = options.logger;
  const jsm = await jetstreamManager(nc);

  log?.info('Setting up JetStream streams...');
  // Commands are published on `commands.<key>` and stored on `commands.<partition>.<key>`:
  // the server maps each key to one partition, and each partition has one owner at a time.
  // The durable timers are scheduled messages in the same stream: a schedule's target must
  // be a subject of its own stream (see `timers.ts`).
  const partitions = await ensureCommandsStream(nc, jsm, names, replicas, options.partitions ?? DEFAULT_PARTITIONS);
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
  // Commands only, one consumer per partition: the timers wait in the stream, seen by no
  // consumer until they fire.
  for (let p = 0; p < partitions; p++) {
    await ensureConsumer(jsm, names.commandsStream, partitionConsumer(consumerName, p), {
      ackWaitSeconds: options.ackWaitSeconds ?? DEFAULT_ACK_WAIT_S,
      maxAckPending: MAX_PARTITION_IN_FLIGHT,
      filterSubject: `${names.commandsSubject}.${p}.>`,
      pinned: true,
    });
  }
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
  // The keys' queues, one message per waiter (see `keyed-queue.ts`), outside the records.
  await ensureStream(jsm, {
    name: names.keyedQueueStream,
    subjects: [`${names.keyedQueueSubject}.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: replicas,
    allow_msg_ttl: true,
  });
  // The engine decides from these reads, so they go to each stream's leader: a direct get
  // may be answered by a replica that has not applied the latest write yet.
  const kvm = new Kvm(nc);
  const leaderReads = { allow_direct: false };
  const processorsKv = await withMetaRetry(`bucket ${names.processorsBucket}`, () =>
    new Kvm(nc).create(names.processorsBucket, { history: 1, replicas, storage: StorageType.File, ttl: PROCESSOR_RECORD_TTL_MS }),
  );
  return {
    names,
    jsm,
    stateKv: await kvm.open(names.stateBucket, leaderReads),
    awakeablesKv: await kvm.open(names.awakeablesBucket, leaderReads),
    keyedStateKv: await kvm.open(names.keyedStateBucket, leaderReads),
    processorsKv,
    replicas,
    consumerName,
    partitions,
  };
}

/** Default seconds a delivered command may go without word from its processor. */
export const DEFAULT_ACK_WAIT_S = 8;

/**
 * Creates the command stream with `partitions` partitions, or reads the count of the one
 * that exists (every processor must agree on it, so the stream's own count wins).
 */
async function ensureCommandsStream(
  nc: NatsConnection,
  jsm: JetStreamManager,
  names: EngineNames,
  replicas: number,
  partitions: number,
): Promise<number> {
  const source = `${names.commandsSubject}.*`;
  const config: Partial<StreamConfig> & { name: string } = {
    name: names.commandsStream,
    // One token after the prefix: a key with a dot is refused at publish, never stored unread.
    subjects: [source, `${names.timersSubject}.>`],
    subject_transform: { src: source, dest: `${names.commandsSubject}.{{partition(${partitions},1)}}.{{wildcard(1)}}` },
    allow_msg_schedules: true,
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    num_replicas: replicas,
    // No max age: an unprocessed command is never dropped by the stream.
    duplicate_window: DUPLICATE_WINDOW_NS,
    discard: DiscardPolicy.Old,
  };
  await ensureStream(jsm, config);
  await allowTimers(nc, jsm, config);
  const info = await withMetaRetry(`stream ${names.commandsStream}`, () => jsm.streams.info(names.commandsStream));
  const count = /\{\{\s*partition\((\d+)/i.exec(info.config.subject_transform?.dest ?? '')?.[1];
  if (count === undefined) {
    throw new ConfigurationError(
      `stream ${names.commandsStream} has no partition mapping (created by an older version): drain it, delete it, and start a processor again`,
    );
  }
  return Number(count);
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
 * Creates a durable pull consumer, or brings its ack wait and limit of pending acks to the
 * given values. No max deliver: the processor counts attempts itself and records a
 * failure with its reason, where a server-side limit would drop the command silently.
 */
async function ensureConsumer(jsm: JetStreamManager, stream: string, name: string, options: ConsumerSettings): Promise<void> {
  const wanted: Partial<ConsumerConfig> = {
    ack_wait: options.ackWaitSeconds * NS_PER_S,
    max_ack_pending: options.maxAckPending,
    ...(options.pinned ? { priority_groups: [OWNER_GROUP], priority_policy: 'pinned_client' as const, priority_timeout: PIN_TIMEOUT_NS } : {}),
  };
  await withMetaRetry(`consumer ${name}`, async () => {
    try {
      const info = await jsm.consumers.info(stream, name);
      if (info.config.ack_wait !== wanted.ack_wait || info.config.max_ack_pending !== wanted.max_ack_pending) {
        await jsm.consumers.update(stream, name, wanted);
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
        max_deliver: -1,
        ...(options.filterSubject ? { filter_subject: options.filterSubject } : {}),
        ...wanted,
      });
    } catch (err) {
      if (!isAlreadyInUse(err)) throw err;
    }
  });
}

/** How a durable consumer is set up. */
interface ConsumerSettings {
  ackWaitSeconds: number;
  maxAckPending: number;
  filterSubject?: string;
  /** One pinned client at a time (a partition's owner), see {@link OWNER_GROUP}. */
  pinned?: boolean;
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
