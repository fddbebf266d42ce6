/**
 * Creates the engine's streams, buckets and consumers where missing, and brings those an
 * older version made (or a hand misconfigured) to the settings this version wants, where
 * JetStream can change them (see `reconcile.ts`). Idempotent and safe when several
 * processors start at once: whoever creates a resource first wins, and every processor
 * changes the others' settings to the same values.
 */
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  jetstreamManager,
  type JetStreamManager,
  type ConsumerConfig,
  type StreamConfig,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { engineNames, type EngineNames } from '../config.js';
import { ConfigurationError, InvalidArgumentError } from '../errors.js';
import type { Logger } from '../logger.js';
import { createStream, ensureStream, isAlreadyInUse, isNotFound, reconcileStream, type StreamSettings, type WantedStream } from './reconcile.js';
import { withMetaRetry } from './retry.js';

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
   * later reads the stream's own count, and warns when it was given another). @default 4
   */
  partitions?: number;
  /**
   * How long the dead-letter stream keeps a command that could not be decoded, ms (the
   * stream's max age); 0 keeps them for good. @default 7 days
   */
  deadLetterRetentionMs?: number;
  /** Where the guide's setup lines go, and what was changed in an existing resource. */
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
  /**
   * The command stream keeps acknowledged commands (limits retention) and each partition's
   * owner removes them (see `partition-lane.ts`); false for a work queue an earlier version
   * made, which removes each one as it is acknowledged.
   */
  trimCommands: boolean;
  /** Live processors, one heartbeat record each (see `processor/membership.ts`). */
  processorsKv: KV;
}

const NS_PER_MS = 1e6;
const NS_PER_S = 1e9;
/** The command stream's de-duplication window, ns. */
const DUPLICATE_WINDOW_NS = 5 * 60 * NS_PER_S;
/** JetStream's de-duplication window when none is given, ns. */
const SERVER_DUPLICATE_WINDOW_NS = 2 * 60 * NS_PER_S;

/** How long a processor's record outlives its last renewal (dead processors' records go), ms. */
const PROCESSOR_RECORD_TTL_MS = 60_000;
/**
 * Default number of command partitions: up to this many processors share the work. Each
 * partition is a consumer replicated on three nodes, and the fewer its commands per second,
 * the less the servers batch its deliveries and acknowledgements: in one A/B on a 2-core
 * machine, 64 `hello_workflow`s in flight cost the servers 1.16 ms of CPU each over 16
 * partitions and 0.91 ms over 4. A deployment with more processors asks for more.
 */
export const DEFAULT_PARTITIONS = 4;
/** Default of {@link SetupOptions.deadLetterRetentionMs}: 7 days. */
export const DEFAULT_DEAD_LETTER_RETENTION_MS = 7 * 24 * 60 * 60 * 1_000;
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

/** Creates whatever of the engine's JetStream resources is missing, and reconciles the rest. */
export async function setupEngine(nc: NatsConnection, options: SetupOptions = {}): Promise<EngineResources> {
  const names = engineNames(options.namespace);
  const replicas = options.replicas ?? (nc.info?.cluster ? 3 : 1);
  const consumerName = options.consumerName ?? 'processor-1';
  const log = options.logger;
  const jsm = await jetstreamManager(nc);
  const { deadLetterRetentionMs = DEFAULT_DEAD_LETTER_RETENTION_MS } = options;
  if (!Number.isSafeInteger(deadLetterRetentionMs) || deadLetterRetentionMs < 0) {
    throw new InvalidArgumentError('dead-letter retention', `${deadLetterRetentionMs} is not a whole number of ms >= 0 (0 keeps dead letters for good)`);
  }

  log?.info('Setting up JetStream streams...');
  const { partitions, retention } = await createCommandsStream(jsm, names, replicas, options.partitions, log);
  // Commands only, one consumer per partition: the timers wait in the stream, seen by no
  // consumer until they fire. Made before the stream is brought to its replicas: JetStream
  // creates no consumer on a stream while it scales up ("insufficient resources"), and the
  // consumers made before follow it.
  for (let p = 0; p < partitions; p++) {
    await ensureConsumer(jsm, names.commandsStream, partitionConsumer(consumerName, p), {
      ackWaitSeconds: options.ackWaitSeconds ?? DEFAULT_ACK_WAIT_S,
      maxAckPending: MAX_PARTITION_IN_FLIGHT,
      filterSubject: `${names.commandsSubject}.${p}.>`,
      pinned: true,
      // Every delivery and ack would otherwise be a synced write of its own, a third of
      // the servers' work per invocation. The commands stay on disk; a consumer that loses
      // its state (two of its three servers down at once) delivers them again as new.
      memory: true,
    });
  }
  await reconcileStream(jsm, commandsStream(jsm, names, replicas, partitions, retention), { log });
  await ensureStream(jsm, stream(jsm, names.journalStream, { subjects: [`${names.journalSubject}.>`], ...recordLimits(replicas), allow_direct: true }), { log });
  await ensureStream(jsm, deadLetterStream(jsm, names, replicas, deadLetterRetentionMs), { log });
  await ensureIndexResources(jsm, names, replicas, log);

  log?.info('Setting up KV buckets...');
  // History 1: every decision is a compare-and-set on the newest revision, and the older
  // ones only took space. Per-message TTLs let a record carry its own expiry.
  const records = { history: 1, allow_msg_ttl: true };
  for (const name of [names.stateBucket, names.awakeablesBucket, names.keyedStateBucket]) {
    await ensureStream(jsm, bucket(jsm, name, replicas, records), { log });
  }
  await ensureStream(jsm, {
    ...bucket(jsm, names.processorsBucket, replicas, { history: 1, ttl: PROCESSOR_RECORD_TTL_MS }),
    disposable: 'it holds only heartbeats, which the processors write again every second',
  }, { log });
  // The keys' queues, one message per waiter (see `keyed-queue.ts`), outside the records.
  await ensureStream(jsm, stream(jsm, names.keyedQueueStream, { subjects: [`${names.keyedQueueSubject}.>`], ...recordLimits(replicas) }), { log });
  // The engine decides from these reads, so they go to each stream's leader: a direct get
  // may be answered by a replica that has not applied the latest write yet.
  const kvm = new Kvm(nc);
  const leaderReads = { allow_direct: false };
  return {
    names,
    jsm,
    stateKv: await kvm.open(names.stateBucket, leaderReads),
    awakeablesKv: await kvm.open(names.awakeablesBucket, leaderReads),
    keyedStateKv: await kvm.open(names.keyedStateBucket, leaderReads),
    processorsKv: await kvm.open(names.processorsBucket),
    replicas,
    consumerName,
    partitions,
    trimCommands: retention === RetentionPolicy.Limits,
  };
}

/** Default seconds a delivered command may go without word from its processor. */
export const DEFAULT_ACK_WAIT_S = 8;

/** Limits retention on file storage, no limit but those given: what holds the engine's records. */
function recordLimits(replicas: number): Omit<StreamSettings, 'subjects'> {
  return {
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: replicas,
    max_msgs_per_subject: -1,
    max_age: 0,
    max_bytes: -1,
    discard: DiscardPolicy.Old,
    allow_msg_ttl: true,
  };
}

/** Commands that could not be decoded, kept for an operator to look at for `retentionMs` (0: for good). */
function deadLetterStream(jsm: JetStreamManager, names: EngineNames, replicas: number, retentionMs: number): WantedStream {
  const maxAge = retentionMs * NS_PER_MS;
  return stream(jsm, names.deadLetterStream, {
    subjects: [`${names.deadLetterSubject}.>`],
    ...recordLimits(replicas),
    max_age: maxAge,
    // JetStream refuses a de-duplication window longer than the max age.
    duplicate_window: maxAge > 0 ? Math.min(SERVER_DUPLICATE_WINDOW_NS, maxAge) : SERVER_DUPLICATE_WINDOW_NS,
  });
}

/** A stream with these settings, created as they are. */
function stream(jsm: JetStreamManager, name: string, settings: StreamSettings): WantedStream {
  return { name, label: `stream ${name}`, settings, create: () => jsm.streams.add({ name, ...settings }) };
}

/** What a bucket wants beyond its replicas. */
interface BucketSettings {
  history: number;
  /** How long a record outlives its last write, ms. */
  ttl?: number;
  allow_msg_ttl?: boolean;
}

/**
 * A bucket: its stream `KV_<bucket>`, made as the KV client makes one (subjects
 * `$KV.<bucket>.>`, roll-ups, discard new), with every setting at once; its history is the
 * stream's messages per subject.
 */
function bucket(jsm: JetStreamManager, name: string, replicas: number, wanted: BucketSettings): WantedStream {
  const settings: StreamSettings = {
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: replicas,
    subjects: [`$KV.${name}.>`],
    max_msgs_per_subject: wanted.history,
    max_age: (wanted.ttl ?? 0) * NS_PER_MS,
    max_bytes: -1,
    discard: DiscardPolicy.New,
    allow_direct: true,
    ...(wanted.allow_msg_ttl ? { allow_msg_ttl: true } : {}),
  };
  const stream = `KV_${name}`;
  return { name: stream, label: `bucket ${name}`, settings, create: () => jsm.streams.add({ name: stream, ...settings, allow_rollup_hdrs: true }) };
}

/**
 * The command stream: commands are published on `commands.<key>` and stored on
 * `commands.<partition>.<key>`; the server maps each key to one partition, and each
 * partition has one owner at a time. The durable timers are scheduled messages in the same
 * stream: a schedule's target must be a subject of its own stream (see `timers.ts`).
 *
 * Limits retention: an acknowledgement only moves its consumer's ack floor, and each
 * partition's owner removes the commands below the floor about once a second, one purge for
 * all of them. A work queue removes each command as it is acknowledged, a replicated delete
 * that costs the servers about three times a command's way through the stream when several
 * partitions take commands at once (README, Scaling). An earlier version made a work queue,
 * which JetStream cannot change in place: it is kept as it is.
 */
function commandsStream(jsm: JetStreamManager, names: EngineNames, replicas: number, partitions: number, retention: RetentionPolicy): WantedStream {
  const source = `${names.commandsSubject}.*`;
  return stream(jsm, names.commandsStream, {
    // One token after the prefix: a key with a dot is refused at publish, never stored unread.
    subjects: [source, `${names.timersSubject}.>`],
    subject_transform: { src: source, dest: `${names.commandsSubject}.{{partition(${partitions},1)}}.{{wildcard(1)}}` },
    allow_msg_schedules: true,
    retention,
    storage: StorageType.File,
    num_replicas: replicas,
    // No max age or other limit: an unprocessed command is never dropped by the stream.
    max_msgs_per_subject: -1,
    max_age: 0,
    max_bytes: -1,
    duplicate_window: DUPLICATE_WINDOW_NS,
    discard: DiscardPolicy.Old,
  });
}

/**
 * Creates the command stream with `requested` partitions (default 4), or reads the count
 * of the one that exists: every processor must agree on it, so the stream's own count wins,
 * and a different request is only warned about.
 * @returns the stream's partition count and retention policy.
 */
async function createCommandsStream(
  jsm: JetStreamManager,
  names: EngineNames,
  replicas: number,
  requested: number | undefined,
  log: Logger | undefined,
): Promise<{ partitions: number; retention: RetentionPolicy }> {
  await createStream(jsm, commandsStream(jsm, names, replicas, requested ?? DEFAULT_PARTITIONS, RetentionPolicy.Limits));
  const info = await withMetaRetry(`stream ${names.commandsStream}`, () => jsm.streams.info(names.commandsStream));
  const partitions = partitionCount(info.config);
  if (partitions === undefined) {
    throw new ConfigurationError(
      `stream ${names.commandsStream} has no partition mapping (created by an older version): drain it, delete it, and start a processor again`,
    );
  }
  if (requested !== undefined && requested !== partitions) {
    log?.warn(
      { stream: names.commandsStream, partitions, requested },
      `Stream ${names.commandsStream} keeps its ${partitions} partitions (${requested} asked): the count is fixed when the stream is created; to change it, drain the stream, delete it and start a processor again`,
    );
  }
  const retention = info.config.retention === RetentionPolicy.Workqueue ? RetentionPolicy.Workqueue : RetentionPolicy.Limits;
  if (retention === RetentionPolicy.Workqueue) {
    log?.info(
      { stream: names.commandsStream },
      `Stream ${names.commandsStream} is a work queue (made by an earlier version) and stays one: it works as it is, at a higher cost to the servers (see README, Upgrading)`,
    );
  }
  return { partitions, retention };
}

/** The `N` of the command stream's `{{partition(N,1)}}` mapping. */
function partitionCount(config: StreamConfig): number | undefined {
  const count = /\{\{\s*partition\((\d+)/i.exec(config.subject_transform?.dest ?? '')?.[1];
  return count === undefined ? undefined : Number(count);
}

/**
 * The execution index's stream and handlers bucket (see `execution-index.ts`): one message
 * per subject, so a status change needs one purge and a same-status write none.
 */
export async function ensureIndexResources(jsm: JetStreamManager, names: EngineNames, replicas: number, log?: Logger): Promise<void> {
  await ensureStream(jsm, stream(jsm, names.indexStream, {
    subjects: [`${names.indexSubject}.>`],
    ...recordLimits(replicas),
    max_msgs_per_subject: 1,
  }), { log });
  await ensureStream(jsm, bucket(jsm, names.handlersBucket, replicas, { history: 1 }), { log });
}

/**
 * Creates a durable pull consumer, or brings its ack wait, limit of pending acks and
 * priority group to the given values. No max deliver: the processor counts attempts itself and records a
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
      if ((Object.keys(wanted) as Array<keyof ConsumerConfig>).some((k) => JSON.stringify(info.config[k]) !== JSON.stringify(wanted[k]))) {
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
        ...(options.memory ? { mem_storage: true } : {}),
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
  /** Its state (deliveries, acks) replicated in memory rather than synced to disk; set when it is made, kept after. */
  memory?: boolean;
}
