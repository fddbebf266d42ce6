/**
 * `make bench`: our figures beside raw JetStream and gRPC figures measured in the same run,
 * with HelloService and each processor as separate processes (bin/*), so a processor has a
 * core of its own as far as the machine allows.
 *
 * Two 3-node clusters:
 * - the shipped one, `sync_interval: always` (every write fsynced before its ack; client
 *   ports 24222-24224, routes 26222-26224, monitoring 28222-28224; BENCH_CLIENT_PORT,
 *   BENCH_ROUTE_PORT and BENCH_MONITOR_PORT move them), which every figure is from unless
 *   said: raw publishes (awaited, pipelined, fenced) and raw gRPC calls; hello_workflow one
 *   at a time (p50, p99, where its time goes, CPU and NATS messages per invocation) and with
 *   64 in flight, then the floor (bench/floor.ts: the same least work done by bare
 *   workers, 1 and 4 of them), then with 64 in flight on 2 and 4 processors (separate
 *   processes sharing the partitions; throughput and CPU per invocation for each count);
 *   custom_workflow with 10 and 1,000 steps (ms per step, writes per step); 2,000
 *   invocations on a processor with a 5 s retention (stored records until they are back at
 *   the baseline); 10,000 invocations asleep at once, sleeping long enough for the
 *   throughput measured (CPU while they wait, how late they wake);
 * - a short-lived one with the server's default sync_interval (its ports are the first's
 *   + 10), run while the first idles before its processor starts: raw publishes, then
 *   hello_workflow one at a time and with 64 in flight on a processor of its own, then the
 *   floor with one worker.
 *
 * Prints the machine and markdown tables (stdout; progress goes to stderr): the figures,
 * the performance issue's targets with met/MISSED, both sync policies side by side (each
 * read against its own cluster's raw figures), throughput by processor count. A section
 * that fails is a row saying why, and the rest still runs and prints. The last line of
 * stdout is always
 *
 *   bench: latency_ratio=<p50 / raw publish p50> throughput_ratio=<completed/s / raw pipelined rate> cpu_ms_per_invocation=<all processes, 64 in flight>
 *
 * for the shipped cluster (`nan` where a figure failed). The exit status is 1 when any
 * section failed. Everything it started is stopped, also on failure and Ctrl+C. App logs:
 * .data/bench/*.log.
 */
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  connectNats,
  createGrpcInvoker,
  DurableClient,
  engineNames,
  errorMessage,
  loadServiceRegistry,
} from '../packages/core/src/index.js';
import {
  type ClusterOptions,
  type ClusterPorts,
  ClusterError,
  type NatsCluster,
  REPO_ROOT,
  natsServerBinary,
  startCluster,
} from '../test/support/nats-cluster.js';
import { type CpuGroup, type CpuSnapshot, cpuSnapshot, idleCpu } from './bench/cpu.js';
import { summariseProfile } from './bench/cpuprofile.js';
import { connectionNodes, messageCounts } from './bench/connz.js';
import { type Probe, helloLatency, helloThroughput, stepsRun } from './bench/engine.js';
import { FLOOR_GROUPS, type FloorFigures, floorRun } from './bench/floor.js';
import { type App, freePort, killApps, portOpen, spawnApp, waitUntil } from './bench/processes.js';
import { operationCosts, rawBaselines } from './bench/raw.js';
import { DEFAULT_PARTITIONS } from '../packages/core/src/nats/setup.js';
import { CONNECTIONS, type EngineRun, GROUPS, type Measured, type Outcome, anyFailed, headline, report } from './bench/report.js';
import { retentionRun } from './bench/retention.js';
import { scalingRun } from './bench/scaling.js';
import { napPlan, sleepers } from './bench/sleepers.js';
import { count, latency, markdownTable, nowMs } from './bench/stats.js';

/** Base ports of the bench cluster; BENCH_CLIENT_PORT, BENCH_ROUTE_PORT, BENCH_MONITOR_PORT move them. */
const PORTS = {
  clientPort: portFromEnv('BENCH_CLIENT_PORT', 24222),
  routePort: portFromEnv('BENCH_ROUTE_PORT', 26222),
  monitorPort: portFromEnv('BENCH_MONITOR_PORT', 28222),
};
/** The second cluster's (server default sync_interval): the first's + 10. */
const DEFAULT_SYNC_PORTS: ClusterPorts = {
  clientPort: PORTS.clientPort + 10,
  routePort: PORTS.routePort + 10,
  monitorPort: PORTS.monitorPort + 10,
};
const LOG_DIR = join(REPO_ROOT, '.data/bench');
/** BENCH_PROFILE=1: the shipped cluster's first processor runs from source under `node --cpu-prof` (slower: figures not for quoting). */
const PROFILE = process.env.BENCH_PROFILE === '1';
const PROFILE_DIR = join(LOG_DIR, 'profile');

/** Sizes of each measurement. */
const SIZES = {
  raw: { sequential: 2_000, pipelinedCount: 20_000, inFlight: 256, payloadBytes: 128 },
  /** The servers' CPU per operation, at the throughput run's in-flight count. */
  operations: { count: 5_000, inFlight: 64, payloadBytes: 128, consumers: [1, DEFAULT_PARTITIONS], limitsConsumers: [DEFAULT_PARTITIONS] },
  grpcCalls: 500,
  /** One at a time on a warm processor: `warmupInFlight` at 64 in flight, then `warmup` one at a time, all unmeasured. */
  latency: { warmupInFlight: 3_000, warmup: 50, n: 500 },
  /** `warmup` unmeasured before, per processor running (see helloThroughput). */
  throughput: { n: 2_000, inFlight: 64, warmup: 3_000 },
  /** Processor counts measured after the first (one processor) at the throughput's sizes. */
  processorCounts: [2, 4],
  /** The floor's bare workers: one, then each of these counts (on the shipped cluster only). */
  floorWorkerCounts: [4],
  shortSteps: { names: 10, runs: 20 },
  longSteps: { names: 1_000, runs: 3 },
  /** The sleep is made long enough for the throughput measured, and at least `minSleepMs`. */
  sleepers: { n: 10_000, minSleepMs: 40_000, windowMs: 5_000 },
  processorMaxConcurrent: 256,
  retention: { n: 2_000, inFlight: 64, retentionMs: 5_000 },
};

/** How long idle CPU is measured, ms. */
const IDLE_MS = 2_000;
/** How long the second cluster's start is tried again (a socket holds its port up to a minute after it closes), ms. */
const CLUSTER_START_RETRY_MS = 65_000;

const started = nowMs();
const clusters: NatsCluster[] = [];
const connections: NatsConnection[] = [];
const apps: App[] = [];

function portFromEnv(name: string, fallback: number): number {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65_533) throw new Error(`${name}=${value} is not a port`);
  return port;
}

function progress(message: string): void {
  process.stderr.write(`[${((nowMs() - started) / 1000).toFixed(1).padStart(5)} s] ${message}\n`);
}

/** Runs a section; when it fails, its error is its outcome and the run goes on. */
async function attempt<T>(what: string, run: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return await run();
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    progress(`${what} failed: ${error.message}`);
    return error;
  }
}

async function main(m: Measured): Promise<void> {
  const server = natsServerBinary();
  const serverVersion = execFileSync(server, ['--version'], { encoding: 'utf8' }).trim().replace(/^nats-server:\s*/, '');
  const machine = `Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}, nats-server ${serverVersion}`;
  const load = `load average before the run ${loadavg().map((l) => l.toFixed(2)).join(' / ')} (1 / 5 / 15 min)`;
  m.machine = `${machine}; ${load}`;
  progress(m.machine);

  // The shipped cluster first: its ports are taken before the other cluster's connections
  // take ports of the ephemeral range, which the bench's ports are in.
  progress('starting a 3-node cluster (sync_interval always, as shipped)');
  const cluster = await startCluster({ ...PORTS, syncInterval: 'always' });
  clusters.push(cluster);
  const nc = await connectNats({ servers: cluster.urls, name: CONNECTIONS.client, maxAttempts: 3 });
  connections.push(nc);
  const jsm = await jetstreamManager(nc);
  progress(`raw JetStream: ${count(SIZES.raw.sequential)} publishes, ${count(SIZES.raw.pipelinedCount)} pipelined, ${count(SIZES.raw.sequential)} fenced appends`);
  m.raw = await attempt('raw JetStream', () => rawBaselines(nc, SIZES.raw, () => serverCpuMs(cluster)));
  progress(`raw JetStream operations: ${count(SIZES.operations.count)} of each, ${SIZES.operations.inFlight} in flight`);
  m.operations = await attempt('raw JetStream operations', () => operationCosts(nc, SIZES.operations, () => serverCpuMs(cluster)));

  const grpcPort = await freePort();
  const helloAddress = `127.0.0.1:${grpcPort}`;
  const hello = spawnApp('hello-service', join(REPO_ROOT, 'bin/hello-service'), [], { GRPC_PORT: String(grpcPort), LOG_LEVEL: 'warn' }, LOG_DIR);
  apps.push(hello);
  await waitUntil(hello, `a listener on :${grpcPort}`, () => portOpen(grpcPort));
  progress(`raw gRPC: ${SIZES.grpcCalls} SayHello calls`);
  m.grpc = await attempt('raw gRPC', () => grpcLatency(helloAddress, SIZES.grpcCalls));

  // While the shipped cluster idles, with no processor on it yet.
  m.defaultSync = await defaultSyncRun(hello, helloAddress);

  if (PROFILE) rmSync(PROFILE_DIR, { recursive: true, force: true });
  const processor = await startProcessor('processor', cluster, jsm, helloAddress, PROFILE);
  const client = await DurableClient.connect({ nc });
  const watchNc = await connectNats({ servers: cluster.urls, name: 'durable-bench-watch', maxAttempts: 3 });
  connections.push(watchNc);
  const cpu = (processors: readonly App[]) => () => cpuSnapshot(cpuGroups(cluster, processors, hello));
  const probe = (processors: readonly App[]) => async (): Promise<Probe> => ({
    cpu: cpu(processors)(),
    messages: await messageCounts(cluster.monitorUrls, Object.values(CONNECTIONS)),
  });
  m.shipped = await engineRun({ nc, watchNc, client, jsm, cpu: cpu([processor]), probe: probe([processor]), where: '' });
  // Right after ours, so that both meet the same spell of a shared machine; the processor idles meanwhile.
  progress('the floor: bare workers doing the least work of a hello_workflow, 1 then 4 of them');
  m.floor = await attempt('the floor', () => floor(cluster, nc, jsm, hello, helloAddress, SIZES.floorWorkerCounts, ''));

  const shippedThroughput = m.shipped.throughput;
  m.scaling = await attempt('throughput by processor count', () =>
    scalingRun({
      counts: SIZES.processorCounts,
      running: processor,
      first: shippedThroughput instanceof Error ? shippedThroughput : { throughput: shippedThroughput, idle: (m.shipped as EngineRun).idle },
      start: (index) => spawnProcessor(`processor-${index}`, cluster, helloAddress),
      jsm,
      client,
      watchNc,
      monitors: cluster.monitorUrls,
      cpu,
      probe,
      n: SIZES.throughput.n,
      inFlight: SIZES.throughput.inFlight,
      warmupPerProcessor: SIZES.throughput.warmup,
      idleMs: IDLE_MS,
      progress,
    }),
  );

  progress(`custom_workflow with ${SIZES.shortSteps.names} names, ${SIZES.shortSteps.runs} runs`);
  m.shortSteps = await attempt('custom_workflow, short', () => stepsRun(jsm, client, SIZES.shortSteps.names, SIZES.shortSteps.runs));
  progress(`custom_workflow with ${count(SIZES.longSteps.names)} names, ${SIZES.longSteps.runs} runs`);
  m.longSteps = await attempt('custom_workflow, long', () => stepsRun(jsm, client, SIZES.longSteps.names, SIZES.longSteps.runs));

  const { n: keptN, inFlight: keptInFlight, retentionMs } = SIZES.retention;
  progress(`${count(keptN)} hello_workflow on a processor with --retention ${retentionMs / 1000}s, until the streams are back at their baseline`);
  m.retention = await attempt('stored records', async () => {
    const services = createGrpcInvoker(loadServiceRegistry({ addresses: { HelloService: helloAddress } }));
    return retentionRun(nc, services, keptN, keptInFlight, retentionMs, cpu([processor])).finally(() => services.close());
  });

  const { n: napN, minSleepMs, windowMs } = SIZES.sleepers;
  const measuredRate = shippedThroughput instanceof Error ? Number.NaN : shippedThroughput.perSecond;
  const plan = napPlan(napN, measuredRate, windowMs, minSleepMs);
  progress(`${count(napN)} concurrent nap invocations sleeping ${plan.sleepMs / 1000} s (long enough for all to fall asleep at ${count(measuredRate)} /s)`);
  m.sleepers = await attempt('sleepers', () => sleepers(nc, client, cpu([processor]), plan));

  m.placement = await attempt('placement', () => placement(cluster, jsm));
  const warnings = apps.filter((a) => /WARN|ERROR|FATAL/.test(a.logTail(1_000))).map((a) => a.logFile);
  if (warnings.length > 0) progress(`warnings or errors were logged, see ${warnings.join(', ')}`);
}

/** SayHello called directly, one at a time, after 50 unmeasured calls. */
async function grpcLatency(helloAddress: string, calls: number): Promise<ReturnType<typeof latency>> {
  const invoker = createGrpcInvoker(loadServiceRegistry({ addresses: { HelloService: helloAddress } }));
  const times: number[] = [];
  try {
    for (let i = 0; i < calls + 50; i++) {
      const t0 = nowMs();
      await invoker.call('HelloService', 'SayHello', { name: 'bench' });
      if (i >= 50) times.push(nowMs() - t0);
    }
  } finally {
    invoker.close();
  }
  return latency(times);
}

/** hello_workflow on one cluster's processor: idle CPU, then one at a time, then 64 in flight. */
async function engineRun(o: {
  nc: NatsConnection;
  watchNc: NatsConnection;
  client: DurableClient;
  jsm: JetStreamManager;
  cpu: () => CpuSnapshot;
  probe: () => Promise<Probe>;
  /** Says which cluster in progress lines ('' for the shipped one). */
  where: string;
}): Promise<EngineRun> {
  // What the processes burn doing nothing (timers, heartbeats, Raft), to take out of per-invocation figures.
  const idle = await idleCpu(o.cpu, IDLE_MS);
  progress(`${o.where}hello_workflow one at a time: ${count(SIZES.latency.warmupInFlight)} warm-up at ${SIZES.throughput.inFlight} in flight and ${SIZES.latency.warmup} one at a time, ${SIZES.latency.n} measured`);
  const latencyFigures = await attempt(`${o.where}hello_workflow one at a time`, () =>
    helloLatency(o.nc, o.watchNc, o.client, o.probe, { n: SIZES.latency.warmupInFlight, inFlight: SIZES.throughput.inFlight }, SIZES.latency.warmup, SIZES.latency.n),
  );
  progress(`${o.where}hello_workflow with ${SIZES.throughput.inFlight} in flight: ${count(SIZES.throughput.warmup)} unmeasured, then ${count(SIZES.throughput.n)}`);
  const throughput = await attempt(`${o.where}hello_workflow with ${SIZES.throughput.inFlight} in flight`, () =>
    helloThroughput(o.jsm, o.client, o.probe, SIZES.throughput.n, SIZES.throughput.inFlight, SIZES.throughput.warmup),
  );
  return { idle, latency: latencyFigures, throughput };
}

/**
 * The second cluster, with the server's default sync_interval: raw figures, then
 * hello_workflow on a processor of its own (the same HelloService); all of it stopped after.
 */
async function defaultSyncRun(hello: App, helloAddress: string): Promise<Measured['defaultSync']> {
  const out: Measured['defaultSync'] = {};
  progress('starting a second cluster with the default sync_interval');
  let other: NatsCluster | undefined;
  let otherNc: NatsConnection | undefined;
  let watchNc: NatsConnection | undefined;
  let processor: App | undefined;
  try {
    other = await startClusterRetrying({ ...DEFAULT_SYNC_PORTS, syncInterval: 'default' });
    clusters.push(other);
    const c = other;
    otherNc = await connectNats({ servers: c.urls, name: CONNECTIONS.client, maxAttempts: 3 });
    const nc = otherNc;
    progress('raw JetStream on it');
    out.raw = await attempt('raw JetStream (default sync_interval)', () => rawBaselines(nc, SIZES.raw, () => serverCpuMs(c)));
    out.engine = await attempt('hello_workflow (default sync_interval)', async () => {
      const jsm = await jetstreamManager(nc);
      const started = await startProcessor('processor-default-sync', c, jsm, helloAddress);
      processor = started;
      const client = await DurableClient.connect({ nc });
      watchNc = await connectNats({ servers: c.urls, name: 'durable-bench-watch', maxAttempts: 3 });
      const cpu = () => cpuSnapshot(cpuGroups(c, [started], hello));
      const probe = async (): Promise<Probe> => ({ cpu: cpu(), messages: await messageCounts(c.monitorUrls, Object.values(CONNECTIONS)) });
      return engineRun({ nc, watchNc, client, jsm, cpu, probe, where: 'default sync_interval: ' });
    });
    progress('default sync_interval: the floor, one bare worker');
    out.floor = await attempt('the floor (default sync_interval)', async () => floor(c, nc, await jetstreamManager(nc), hello, helloAddress, [], 'default-sync-'));
  } catch (err) {
    // The cluster did not start or could not be reached.
    out.raw ??= err instanceof Error ? err : new Error(String(err));
    progress(`default sync_interval cluster failed: ${errorMessage(err)}`);
  } finally {
    await processor?.stop();
    await watchNc?.close().catch(() => undefined);
    await otherNc?.close().catch(() => undefined);
    if (other) {
      await other.stop().catch(() => undefined);
      clusters.splice(clusters.indexOf(other), 1);
    }
  }
  return out;
}

/**
 * Starts a cluster, trying again for a while when it cannot: a port of the bench's, in the
 * ephemeral range, may be held for a minute by a connection that happened to be given it.
 */
async function startClusterRetrying(options: Partial<ClusterOptions>): Promise<NatsCluster> {
  const deadline = nowMs() + CLUSTER_START_RETRY_MS;
  for (;;) {
    try {
      return await startCluster(options);
    } catch (err) {
      if (!(err instanceof ClusterError) || nowMs() > deadline) throw err;
      progress(`${err.message}; trying again in 5 s`);
      await sleep(5_000);
    }
  }
}

/** The floor on a cluster, its processor idle or stopped: one bare worker, then each of `workerCounts`. */
function floor(c: NatsCluster, nc: NatsConnection, jsm: JetStreamManager, hello: App, helloAddress: string, workerCounts: readonly number[], tag: string): Promise<FloorFigures> {
  // A missing pid file reads as "n/a", as in cpuGroups.
  const servers = serverPids(c);
  return floorRun({
    nc,
    jsm,
    urls: c.urls,
    helloAddress,
    cpu: (workers) =>
      cpuSnapshot([
        { name: FLOOR_GROUPS.servers, pids: servers.length === 3 ? servers : [-1] },
        { name: FLOOR_GROUPS.workers, pids: workers.map((w) => w.pid) },
        { name: FLOOR_GROUPS.hello, pids: [hello.pid] },
        { name: FLOOR_GROUPS.client, pids: [process.pid] },
      ]),
    latency: { warmupInFlight: SIZES.latency.warmupInFlight, n: SIZES.latency.n },
    throughput: SIZES.throughput,
    workerCounts,
    idleMs: IDLE_MS,
    logDir: LOG_DIR,
    repoRoot: REPO_ROOT,
    tag,
  });
}

/** Spawns a processor on a cluster (not waiting for it), with the bench's processor options. */
function spawnProcessor(name: string, c: NatsCluster, helloAddress: string, profile = false): App {
  // No HTTP API: several processors on one machine would contend for its port.
  const args = ['--max-concurrent', String(SIZES.processorMaxConcurrent), '--http-port', '0'];
  const app = spawnApp(
    name,
    profile ? process.execPath : join(REPO_ROOT, 'bin/processor'),
    profile ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, '--import', 'tsx', 'apps/processor/src/main.ts', ...args] : args,
    { NATS_URL: c.url, SERVICE_HELLOSERVICE_ADDRESS: helloAddress, LOG_LEVEL: 'warn' },
    LOG_DIR,
    REPO_ROOT,
  );
  apps.unshift(app); // stopped first, while NATS and HelloService are still up
  return app;
}

/** Spawns a processor and waits until it pulls. */
async function startProcessor(name: string, c: NatsCluster, jsm: JetStreamManager, helloAddress: string, profile = false): Promise<App> {
  progress(`starting ${name} (--max-concurrent ${SIZES.processorMaxConcurrent})`);
  const app = spawnProcessor(name, c, helloAddress, profile);
  // LOG_LEVEL=warn hides its "Processor started" line; its pull request waiting on the
  // consumer is the same fact, read from the server.
  await waitUntil(app, 'pull request on processor-1-p0', async () => (await jsm.consumers.info(engineNames().commandsStream, 'processor-1-p0')).num_waiting > 0);
  return app;
}

/** The bench's process groups on a cluster; with several processors, each one's too (not counted in "all"). */
function cpuGroups(c: NatsCluster, processors: readonly App[], hello: App): CpuGroup[] {
  const servers = serverPids(c);
  return [
    // A missing pid file reads as "n/a", not as a server that used no CPU.
    { name: GROUPS.servers, pids: servers.length === 3 ? servers : [-1] },
    { name: GROUPS.processor, pids: processors.map((p) => p.pid) },
    { name: GROUPS.hello, pids: [hello.pid] },
    { name: GROUPS.client, pids: [process.pid] },
    ...(processors.length > 1 ? processors.map((p, i) => ({ name: `${GROUPS.processor} ${i + 1}`, pids: [p.pid] })) : []),
  ];
}

/** The cluster's servers' CPU time so far, ms (NaN when a pid file is missing). */
function serverCpuMs(c: NatsCluster): number {
  const pids = serverPids(c);
  return cpuSnapshot([{ name: GROUPS.servers, pids: pids.length === 3 ? pids : [-1] }]).get(GROUPS.servers) ?? Number.NaN;
}

/** The pids of the cluster's servers, from the pid files the harness writes. */
function serverPids(c: NatsCluster): number[] {
  return [0, 1, 2].flatMap((i) => {
    try {
      const pid = Number.parseInt(readFileSync(join(c.dataDir, `nats-${i + 1}`, 'nats-server.pid'), 'utf8'), 10);
      return Number.isInteger(pid) ? [pid] : [];
    } catch {
      return [];
    }
  });
}

/** Where things ran: each hop between a connection's server and a stream's leader is a route hop. */
async function placement(c: NatsCluster, jsm: JetStreamManager): Promise<string> {
  const names = engineNames();
  const leaders = await Promise.all(
    [names.commandsStream, `KV_${names.stateBucket}`, names.journalStream].map(async (s) => `${s} ${(await jsm.streams.info(s)).cluster?.leader ?? '?'}`),
  );
  const nodes = await connectionNodes(c.monitorUrls, Object.values(CONNECTIONS));
  const on = (name: string) => (nodes.has(name) ? `nats-${(nodes.get(name) as number) + 1}` : '?');
  return `Placement: stream leaders ${leaders.join(', ')}; processor connected to ${on(CONNECTIONS.processor)}, bench client to ${on(CONNECTIONS.client)}.`;
}

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const app of apps) await app.stop().catch(() => undefined);
    for (const c of connections) await c.close().catch(() => undefined);
    for (const c of clusters) await c.stop().catch(() => undefined);
  })();
  return cleaning;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`\n${sig}: stopping what the bench started\n`);
    killApps();
    // The cluster harness's exit handler kills its servers and removes their data.
    process.exit(130);
  });
}

/** Prints where the processor's CPU went, from the profile it wrote when it stopped. */
function printProfile(): void {
  const summary = summariseProfile(PROFILE_DIR, REPO_ROOT);
  if (!summary) {
    progress(`no CPU profile found in ${PROFILE_DIR}`);
    return;
  }
  const pct = (share: number) => `${(share * 100).toFixed(1)} %`;
  const out = [
    `Processor CPU profile, whole run, profiler on (${summary.file}; ${count(summary.busyMs)} ms busy):`,
    '',
    markdownTable(['self time in', 'ms', 'share'], summary.byPlace.map((p) => [p.place, count(p.ms), pct(p.share)])),
    '',
    markdownTable(['function', 'where', 'ms', 'share'], summary.byFunction.map((f) => [f.fn, f.place, count(f.ms), pct(f.share)])),
    '',
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

const measured: Measured = { machine: '', profiled: PROFILE, defaultSync: {} };
let unprinted = false;
try {
  await main(measured);
} catch (err) {
  measured.stopped = err instanceof Error ? err : new Error(String(err));
  process.stderr.write(`bench failed: ${errorMessage(err)}\n`);
}
// What was measured is printed whatever failed, and the last line in any case.
try {
  process.stdout.write(report(measured));
} catch (err) {
  unprinted = true;
  process.stderr.write(`bench: could not print the tables: ${errorMessage(err)}\n`);
}
progress('stopping the processors, HelloService and the cluster');
await cleanup();
if (PROFILE) printProfile();
process.stdout.write(`${headline(measured)}\n`);
if (unprinted || anyFailed(measured)) process.exitCode = 1;
progress('done');
