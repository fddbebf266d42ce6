/**
 * The floor: what the performance issue counts as one hello_workflow's least work (the
 * command's publish and delivery, one gRPC call, one durable write of the outcome), done by
 * bare workers with no engine (floor-worker.ts), measured on the same cluster as ours and in
 * the same run. It says how much of what the targets ask this machine can give at all: a
 * ratio to raw NATS that the floor itself misses, no engine doing that work can meet here.
 *
 * The bench client publishes each command, with a message ID, to an R3 stream of limits
 * retention cut into partitions, each pulled through a consumer whose state is kept on
 * three nodes in memory (as the engine's command stream), and waits for its outcome on
 * core NATS; the stream is trimmed up to each consumer's ack floor once a second, as the
 * partitions' owners trim the engine's.
 */
import { AckPolicy, type JetStreamManager, RetentionPolicy, StorageType, jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { type CpuSnapshot, type IdleCpu, cpuBetween, idleCpu, netPerInvocation } from './cpu.js';
import { type App, spawnApp, waitUntil } from './processes.js';
import { trimEachSecond } from './raw.js';
import { type Latency, latency, nowMs, pipelined } from './stats.js';

const STREAM = 'BENCH_FLOOR';
const BUCKET = 'BENCH_FLOOR_OUT';
const COMMAND_PREFIX = 'bench.floor.cmd';
/** Where a worker announces a command's outcome: `<prefix>.<id>`. */
export const FLOOR_DONE_PREFIX = 'bench.floor.done';
/** The floor's partitions: as many as the engine's default. */
const PARTITIONS = 4;
const WAIT_MS = 60_000;

/** The consumer of a partition of the floor's stream. */
export function floorConsumer(partition: number): string {
  return `bench-floor-${partition}`;
}

/** The process groups whose CPU the floor reads; `workers` stands for the processor. */
export const FLOOR_GROUPS = { servers: 'servers', workers: 'workers', hello: 'hello', client: 'client' } as const;

export interface FloorOptions {
  nc: NatsConnection;
  jsm: JetStreamManager;
  /** The cluster's client URLs, for the workers. */
  urls: string[];
  helloAddress: string;
  /** CPU of the groups of {@link FLOOR_GROUPS}, given the workers running. */
  cpu: (workers: readonly App[]) => CpuSnapshot;
  /** One at a time: `warmupInFlight` at `inFlight` unmeasured, then `n` measured (as ours). */
  latency: { warmupInFlight: number; n: number };
  /** `n` at `inFlight` measured after `warmup` unmeasured per worker. */
  throughput: { n: number; inFlight: number; warmup: number };
  /** Worker counts measured after one (each pulls its share of the partitions); none for only one. */
  workerCounts: readonly number[];
  idleMs: number;
  logDir: string;
  repoRoot: string;
  /** Names the workers' log files apart from another cluster's. */
  tag: string;
}

export interface FloorThroughput {
  workers: number;
  perSecond: number;
  /** CPU ms per invocation of each of {@link FLOOR_GROUPS}, idle taken out. */
  cpu: Record<keyof typeof FLOOR_GROUPS, number>;
  all: number;
}

export interface FloorFigures {
  latency: Latency;
  /** One worker first, then each of `workerCounts`. */
  throughput: FloorThroughput[];
}

/** Measures the floor on one cluster; everything it made is removed after. */
export async function floorRun(o: FloorOptions): Promise<FloorFigures> {
  const js = jetstream(o.nc);
  await o.jsm.streams.add({ name: STREAM, subjects: [`${COMMAND_PREFIX}.>`], retention: RetentionPolicy.Limits, storage: StorageType.File, num_replicas: 3 });
  let workers: App[] = [];
  const trims: NodeJS.Timeout[] = [];
  const waiting = new Map<string, () => void>();
  const done = o.nc.subscribe(`${FLOOR_DONE_PREFIX}.*`, {
    callback: (_err, msg) => waiting.get(msg.subject.slice(FLOOR_DONE_PREFIX.length + 1))?.(),
  });
  let fail: (err: unknown) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => undefined);
  try {
    await new Kvm(o.nc).create(BUCKET, { replicas: 3, history: 1, storage: StorageType.File });
    for (let p = 0; p < PARTITIONS; p++) {
      const consumer = floorConsumer(p);
      await o.jsm.consumers.add(STREAM, { durable_name: consumer, ack_policy: AckPolicy.Explicit, mem_storage: true, max_ack_pending: 1_000, filter_subject: `${COMMAND_PREFIX}.${p}.>` });
      trims.push(trimEachSecond(o.jsm, STREAM, consumer, `${COMMAND_PREFIX}.${p}.>`, fail));
    }
    let next = 0;
    const invoke = async (): Promise<void> => {
      const n = next++;
      const id = `f${n}`;
      let timer: NodeJS.Timeout | undefined;
      const outcome = Promise.race([
        new Promise<void>((resolve) => waiting.set(id, resolve)),
        failed,
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`floor command ${id}: no outcome after ${WAIT_MS / 1000} s`)), WAIT_MS))),
      ]);
      try {
        await js.publish(`${COMMAND_PREFIX}.${n % PARTITIONS}.${id}`, '{"name":"bench"}', { msgID: id });
        await outcome;
      } finally {
        clearTimeout(timer);
        waiting.delete(id);
      }
    };
    const start = async (count: number): Promise<void> => {
      workers = Array.from({ length: count }, (_, w) =>
        spawnApp(
          `floor-worker-${o.tag}${w + 1}`,
          process.execPath,
          ['--import', 'tsx', 'scripts/bench/floor-worker.ts'],
          {
            NATS_URL: o.urls.join(','),
            HELLO_ADDRESS: o.helloAddress,
            FLOOR_STREAM: STREAM,
            FLOOR_BUCKET: BUCKET,
            FLOOR_PARTITIONS: Array.from({ length: PARTITIONS }, (_, p) => p).filter((p) => p % count === w).join(','),
            LOG_LEVEL: 'warn',
          },
          o.logDir,
          o.repoRoot,
        ),
      );
      await Promise.all(
        Array.from({ length: PARTITIONS }, (_, p) =>
          waitUntil(workers[p % count] as App, `a pull on ${floorConsumer(p)}`, async () => (await o.jsm.consumers.info(STREAM, floorConsumer(p))).num_waiting > 0, 60_000),
        ),
      );
    };
    const stopWorkers = async (): Promise<void> => {
      await Promise.all(workers.map((w) => w.stop()));
      workers = [];
    };
    const measureThroughput = async (count: number): Promise<FloorThroughput> => {
      const { n, inFlight, warmup } = o.throughput;
      await pipelined(warmup * count, inFlight, invoke);
      const snapshot = () => o.cpu(workers);
      const idle: IdleCpu = await idleCpu(snapshot, o.idleMs);
      const before = snapshot();
      const t0 = nowMs();
      await pipelined(n, inFlight, invoke);
      const seconds = (nowMs() - t0) / 1000;
      const used = cpuBetween(before, snapshot());
      const per = (group: string) => netPerInvocation(used.get(group), idle, group, seconds, n);
      const cpu = { servers: per(FLOOR_GROUPS.servers), workers: per(FLOOR_GROUPS.workers), hello: per(FLOOR_GROUPS.hello), client: per(FLOOR_GROUPS.client) };
      return { workers: count, perSecond: n / seconds, cpu, all: cpu.servers + cpu.workers + cpu.hello + cpu.client };
    };

    await start(1);
    await pipelined(o.latency.warmupInFlight, o.throughput.inFlight, invoke);
    const samples: number[] = [];
    for (let i = 0; i < o.latency.n; i++) {
      const t0 = nowMs();
      await invoke();
      samples.push(nowMs() - t0);
    }
    const throughput = [await measureThroughput(1)];
    for (const count of o.workerCounts) {
      await stopWorkers();
      await start(count);
      throughput.push(await measureThroughput(count));
    }
    return { latency: latency(samples), throughput };
  } finally {
    for (const trim of trims) clearInterval(trim);
    done.unsubscribe();
    await Promise.all(workers.map((w) => w.stop()));
    await o.jsm.streams.delete(STREAM).catch(() => undefined);
    await o.jsm.streams.delete(`KV_${BUCKET}`).catch(() => undefined);
  }
}
