/**
 * `make bench`: our figures beside raw JetStream figures measured in the same run, on a
 * 3-node cluster of its own (client ports 24222-24224, routes 26222-26224, monitoring
 * 28222-28224; BENCH_CLIENT_PORT, BENCH_ROUTE_PORT and BENCH_MONITOR_PORT move them),
 * with HelloService and the processor as separate processes (bin/*), so the processor
 * has a core of its own as far as the machine allows.
 *
 * That cluster runs as shipped, with `sync_interval: always` (every write fsynced before
 * its ack). The raw publish figures are measured once more on a second, short-lived
 * cluster with the server's default sync_interval (its ports are the first's + 10), so
 * the table shows what each durability choice costs.
 *
 * Prints the machine and a markdown table (stdout; progress goes to stderr), then stops
 * everything it started, also on failure and Ctrl+C. App logs: .data/bench/*.log.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import {
  connectNats,
  createGrpcInvoker,
  DurableClient,
  engineNames,
  errorMessage,
  loadServiceRegistry,
} from '../packages/core/src/index.js';
import { type ClusterPorts, type NatsCluster, REPO_ROOT, natsServerBinary, startCluster } from '../test/support/nats-cluster.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { type CpuGroup, cpuBetween, cpuSnapshot } from './bench/cpu.js';
import { summariseProfile } from './bench/cpuprofile.js';
import { connectionNodes, messageCounts } from './bench/connz.js';
import { type Probe, helloLatency, helloThroughput, stepsRun, totalWrites } from './bench/engine.js';
import { type App, freePort, killApps, portOpen, spawnApp, waitUntil } from './bench/processes.js';
import { type RawFigures, type RawOptions, rawBaselines } from './bench/raw.js';
import { type RetentionFigures, retentionRun } from './bench/retention.js';
import { type SleepersFigures, sleepers } from './bench/sleepers.js';
import { count, latency, markdownTable, ms, nowMs, ratio } from './bench/stats.js';

/** Base ports of the bench cluster; BENCH_CLIENT_PORT, BENCH_ROUTE_PORT, BENCH_MONITOR_PORT move them. */
const PORTS = {
  clientPort: portFromEnv('BENCH_CLIENT_PORT', 24222),
  routePort: portFromEnv('BENCH_ROUTE_PORT', 26222),
  monitorPort: portFromEnv('BENCH_MONITOR_PORT', 28222),
};
/** The second cluster's (server default sync_interval, raw figures only): the first's + 10. */
const DEFAULT_SYNC_PORTS: ClusterPorts = {
  clientPort: PORTS.clientPort + 10,
  routePort: PORTS.routePort + 10,
  monitorPort: PORTS.monitorPort + 10,
};
const LOG_DIR = join(REPO_ROOT, '.data/bench');
/** BENCH_PROFILE=1: the processor runs from source under `node --cpu-prof` (slower: figures not for quoting). */
const PROFILE = process.env.BENCH_PROFILE === '1';
const PROFILE_DIR = join(LOG_DIR, 'profile');

/** Sizes of each measurement; the whole run stays under about three minutes. */
const SIZES = {
  raw: { sequential: 2_000, pipelinedCount: 20_000, inFlight: 256, payloadBytes: 128 },
  grpcCalls: 500,
  latency: { warmup: 50, n: 500 },
  throughput: { n: 3_000, inFlight: 64 },
  shortSteps: { names: 10, runs: 20 },
  longSteps: { names: 1_000, runs: 3 },
  sleepers: { n: 10_000, sleepMs: 40_000, windowMs: 5_000 },
  processorMaxConcurrent: 256,
  retention: { n: 2_000, inFlight: 64, retentionMs: 5_000 },
};

/** The bench's NATS connection name, as the servers' /connz shows it. */
const BENCH_CONNECTION = 'durable-bench';

/** How long idle CPU is measured, ms. */
const IDLE_MS = 2_000;

/** The targets for a 2-core machine. */
const TARGETS = { latencyP50Ms: 10, perSecond: 500, writesPerStep: 1 };

const started = nowMs();
let cluster: NatsCluster | undefined;
let nc: NatsConnection | undefined;
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

function verdict(met: boolean): string {
  return met ? 'met' : 'MISSED';
}

async function main(): Promise<void> {
  const server = natsServerBinary();
  const serverVersion = execFileSync(server, ['--version'], { encoding: 'utf8' }).trim().replace(/^nats-server:\s*/, '');
  const machine = `Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}, nats-server ${serverVersion}`;
  const load = `load average before the run ${loadavg().map((l) => l.toFixed(2)).join(' / ')} (1 / 5 / 15 min)`;
  progress(`${machine}; ${load}`);

  progress('starting a 3-node cluster (sync_interval always, as shipped)');
  cluster = await startCluster({ ...PORTS, syncInterval: 'always' });
  nc = await connectNats({ servers: cluster.urls, name: BENCH_CONNECTION, maxAttempts: 3 });
  const jsm = await jetstreamManager(nc);

  progress(`raw JetStream: ${count(SIZES.raw.sequential)} publishes, ${count(SIZES.raw.pipelinedCount)} pipelined, ${count(SIZES.raw.sequential)} fenced appends`);
  const serverGroup: CpuGroup[] = [{ name: 'servers', pids: serverPids(cluster).length === 3 ? serverPids(cluster) : [-1] }];
  const raw = await rawBaselines(nc, SIZES.raw, () => cpuSnapshot(serverGroup).get('servers') ?? Number.NaN);
  progress('raw JetStream again on a second cluster with the default sync_interval');
  const rawDefaultSync = await rawWithDefaultSync(SIZES.raw);

  const grpcPort = await freePort();
  const helloAddress = `127.0.0.1:${grpcPort}`;
  const hello = spawnApp('hello-service', join(REPO_ROOT, 'bin/hello-service'), [], { GRPC_PORT: String(grpcPort), LOG_LEVEL: 'warn' }, LOG_DIR);
  apps.push(hello);
  await waitUntil(hello, `a listener on :${grpcPort}`, () => portOpen(grpcPort));

  progress(`raw gRPC: ${SIZES.grpcCalls} SayHello calls`);
  const invoker = createGrpcInvoker(loadServiceRegistry({ addresses: { HelloService: helloAddress } }));
  const grpcTimes: number[] = [];
  try {
    for (let i = 0; i < SIZES.grpcCalls + 50; i++) {
      const t0 = nowMs();
      await invoker.call('HelloService', 'SayHello', { name: 'bench' });
      if (i >= 50) grpcTimes.push(nowMs() - t0);
    }
  } finally {
    invoker.close();
  }
  const grpc = latency(grpcTimes);

  progress(`starting the processor (--max-concurrent ${SIZES.processorMaxConcurrent})`);
  const names = engineNames();
  const processorArgs = ['--max-concurrent', String(SIZES.processorMaxConcurrent)];
  if (PROFILE) rmSync(PROFILE_DIR, { recursive: true, force: true });
  const processor = spawnApp(
    'processor',
    PROFILE ? process.execPath : join(REPO_ROOT, 'bin/processor'),
    PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, '--import', 'tsx', 'apps/processor/src/main.ts', ...processorArgs] : processorArgs,
    { NATS_URL: cluster.url, SERVICE_HELLOSERVICE_ADDRESS: helloAddress, LOG_LEVEL: 'warn' },
    LOG_DIR,
    REPO_ROOT,
  );
  apps.unshift(processor); // stopped first, while NATS and HelloService are still up
  // LOG_LEVEL=warn hides its "Processor started" line; its pull request waiting on the
  // consumer is the same fact, read from the server.
  await waitUntil(processor, 'pull request on processor-1-p0', async () => (await jsm.consumers.info(names.commandsStream, 'processor-1-p0')).num_waiting > 0);
  const client = await DurableClient.connect({ nc });
  const groups: CpuGroup[] = [
    // A missing pid file reads as "n/a", not as a server that used no CPU.
    { name: 'nats-server ×3', pids: serverPids(cluster).length === 3 ? serverPids(cluster) : [-1] },
    { name: 'processor', pids: [processor.pid] },
    { name: 'hello-service', pids: [hello.pid] },
    { name: 'bench client (this process)', pids: [process.pid] },
  ];
  const cpu = () => cpuSnapshot(groups);
  const connections = { processor: 'durable-processor', client: BENCH_CONNECTION };
  const probe = async (): Promise<Probe> => ({ cpu: cpu(), messages: await messageCounts(cluster?.monitorUrls ?? [], Object.values(connections)) });
  // What the processes burn doing nothing (timers, heartbeats, Raft), to take out of per-invocation figures.
  const idleBefore = cpu();
  const idleStart = nowMs();
  await sleep(IDLE_MS);
  const idle = cpuBetween(idleBefore, cpu());
  const idleSeconds = (nowMs() - idleStart) / 1000;

  progress(`hello_workflow one at a time: ${SIZES.latency.warmup} warm-up, ${SIZES.latency.n} measured`);
  const watchNc = await connectNats({ servers: cluster.urls, name: 'durable-bench-watch', maxAttempts: 3 });
  const lat = await helloLatency(nc, watchNc, client, probe, SIZES.latency.warmup, SIZES.latency.n).finally(() => watchNc.close());
  progress(`hello_workflow with ${SIZES.throughput.inFlight} in flight: ${count(SIZES.throughput.n)} invocations`);
  const tput = await helloThroughput(jsm, client, probe, SIZES.throughput.n, SIZES.throughput.inFlight);
  progress(`custom_workflow with ${SIZES.shortSteps.names} names, ${SIZES.shortSteps.runs} runs`);
  const short = await stepsRun(jsm, client, SIZES.shortSteps.names, SIZES.shortSteps.runs);
  progress(`custom_workflow with ${count(SIZES.longSteps.names)} names, ${SIZES.longSteps.runs} runs`);
  const long = await stepsRun(jsm, client, SIZES.longSteps.names, SIZES.longSteps.runs);
  const { n: keptN, inFlight: keptInFlight, retentionMs } = SIZES.retention;
  progress(`${count(keptN)} hello_workflow on a processor with --retention ${retentionMs / 1000}s, until the streams are back at their baseline`);
  const retentionServices = createGrpcInvoker(loadServiceRegistry({ addresses: { HelloService: helloAddress } }));
  const kept = await retentionRun(nc, retentionServices, keptN, keptInFlight, retentionMs).finally(() => retentionServices.close());
  progress(`${count(SIZES.sleepers.n)} concurrent nap invocations sleeping ${SIZES.sleepers.sleepMs / 1000} s`);
  // A run that falls short is reported as a row, with the figures of every other run.
  const naps = await sleepers(nc, client, cpu, SIZES.sleepers.n, SIZES.sleepers.sleepMs, SIZES.sleepers.windowMs).catch((err: unknown) =>
    err instanceof Error ? err : new Error(String(err)),
  );

  const writesPerInvocation = totalWrites(tput.writes);
  const writesPerStep = long.writes.journal / long.steps;
  const ceiling = raw.pipelinedRate / writesPerInvocation;
  const rows: string[][] = [
    ...rawRows(raw, 'sync_interval always, as shipped and as every row below'),
    [`raw: R3 fenced append, \`expect: { lastSubjectSequence }\` (${count(raw.options.sequential)})`, `p50 ${ms(raw.fenced.p50)} ms, p99 ${ms(raw.fenced.p99)} ms`, ''],
    ...rawRows(rawDefaultSync, "sync_interval default (2 min), a second cluster's"),
    [
      'ratio: sync_interval always / default',
      `publish p50 ${ratio(raw.publish.p50 / rawDefaultSync.publish.p50)}, p99 ${ratio(raw.publish.p99 / rawDefaultSync.publish.p99)}; ` +
        `pipelined rate ${ratio(raw.pipelinedRate / rawDefaultSync.pipelinedRate)}`,
      '',
    ],
    [`raw: HelloService.SayHello gRPC call (${grpc.count})`, `p50 ${ms(grpc.p50)} ms, p99 ${ms(grpc.p99)} ms`, ''],
    [
      `hello_workflow invoke-to-result, one at a time (${lat.latency.count} after ${SIZES.latency.warmup})`,
      `p50 ${ms(lat.latency.p50)} ms, p99 ${ms(lat.latency.p99)} ms`,
      `p50 ≤ ${TARGETS.latencyP50Ms} ms: ${verdict(lat.latency.p50 <= TARGETS.latencyP50Ms)}`,
    ],
    [
      `hello_workflow completed, ${tput.inFlight} in flight (${count(tput.invocations)})`,
      `${count(tput.perSecond)} /s (invoke-to-result p50 ${ms(tput.latency.p50)} ms, p99 ${ms(tput.latency.p99)} ms)`,
      `≥ ${TARGETS.perSecond} /s: ${verdict(tput.perSecond >= TARGETS.perSecond)}`,
    ],
    [
      `durable writes per step (JOURNAL messages / steps, custom_workflow ${count(long.names)} names)`,
      `${ratio(writesPerStep)} (${count(long.writes.journal)} / ${count(long.steps)})`,
      `${TARGETS.writesPerStep}: ${verdict(Math.abs(writesPerStep - TARGETS.writesPerStep) < 0.005)}`,
    ],
    [
      'durable writes per hello_workflow invocation (COMMANDS + state + JOURNAL + index)',
      `${ratio(writesPerInvocation)} (${ratio(tput.writes.commands)} + ${ratio(tput.writes.state)} + ${ratio(tput.writes.journal)} + ${ratio(tput.writes.index)})`,
      '',
    ],
    [
      `custom_workflow, ${short.steps} steps (${short.names} SayHello + NOW; median of ${short.runs})`,
      `${ms(short.msPerStep)} ms/step (invoke-to-result ${ms(short.endToEndMs)} ms; ${totalWrites(short.writes)} writes)`,
      '',
    ],
    [
      `custom_workflow, ${count(long.steps)} steps (${count(long.names)} SayHello + NOW; median of ${long.runs})`,
      `${ms(long.msPerStep)} ms/step (invoke-to-result ${count(long.endToEndMs)} ms; ${count(totalWrites(long.writes))} writes)` +
        (long.firstWindow !== undefined && long.lastWindow !== undefined
          ? `; first ${long.window} steps ${ms(long.firstWindow)}, last ${long.window} ${ms(long.lastWindow)} ms/step`
          : ''),
      '',
    ],
    [`ratio: ms/step at ${count(long.steps)} steps / at ${short.steps} steps`, ratio(long.msPerStep / short.msPerStep), '≈ 1 (no growth)'],
    ...(naps instanceof Error ? [[`${count(SIZES.sleepers.n)} sleepers`, `failed: ${naps.message}`, '']] : sleeperRows(naps, idle, idleSeconds)),
    ...retentionRows(kept),
    [
      'ratio: our latency p50 / raw R3 publish p50',
      `${ratio(lat.latency.p50 / raw.publish.p50, 1)} sequential durable writes' worth`,
      '',
    ],
    [
      'ratio: our throughput / (pipelined publish rate / writes per invocation)',
      `${ratio(tput.perSecond / ceiling)} (write-bound ceiling ${count(ceiling)} /s)`,
      '',
    ],
  ];
  const b = lat.breakdown;
  const phaseList = [
    ['client publishes the command, until its ack', b.submit],
    ['command delivered to the processor (plus a KV get on a redelivery)', b.pickup],
    ['state create (KV), then the gRPC call', b.createAndCall],
    ['journal append, then the final state built', b.append],
    ['final state write (KV), announcement, client receives it', b.finish],
  ] as const;
  const phases: string[][] = [
    ...phaseList.map(([what, p]) => [what, ms(p.median), ms(p.mean)]),
    ['sum', ms(phaseList.reduce((a, [, p]) => a + p.median, 0)), ms(phaseList.reduce((a, [, p]) => a + p.mean, 0))],
  ];
  // Per invocation, with what the process would have burnt idle over the same time taken out.
  const net = (used: number | undefined, idleMs: number | undefined, seconds: number, n: number) =>
    used === undefined || idleMs === undefined ? Number.NaN : (used - (idleMs / idleSeconds) * seconds) / n;
  const cpuFigures = groups.map(({ name }) => {
    const idleMs = idle.get(name);
    return {
      name,
      idlePerSecond: idleMs === undefined ? Number.NaN : idleMs / idleSeconds,
      one: net(lat.cpu.get(name), idleMs, lat.seconds, lat.latency.count),
      many: net(tput.cpu.get(name), idleMs, tput.seconds, tput.invocations),
      cores: (tput.cpu.get(name) ?? Number.NaN) / (tput.seconds * 1000),
    };
  });
  const total = (pick: (f: (typeof cpuFigures)[number]) => number) => cpuFigures.reduce((a, f) => a + pick(f), 0);
  const cpuRows: string[][] = [
    ...cpuFigures.map((f) => [f.name, ms(f.idlePerSecond), ms(f.one), ms(f.many), ratio(f.cores)]),
    ['all', ms(total((f) => f.idlePerSecond)), ms(total((f) => f.one)), ms(total((f) => f.many)), `${ratio(total((f) => f.cores))} of ${cpus().length}`],
  ];

  const messageRows: string[][] = Object.entries(connections).map(([who, name]) => {
    const one = lat.messages.get(name);
    const many = tput.messages.get(name);
    const show = (m: typeof one) => (m === undefined ? 'n/a' : `${ratio(m.sent, 1)} sent, ${ratio(m.received, 1)} received`);
    return [who === 'client' ? 'bench client (DurableClient)' : 'processor', show(one), show(many)];
  });

  // Where things ran: each hop between a connection's server and a stream's leader is a route hop.
  const leaders = await Promise.all(
    [names.commandsStream, `KV_${names.stateBucket}`, names.journalStream].map(async (s) => `${s} ${(await jsm.streams.info(s)).cluster?.leader ?? '?'}`),
  );
  const nodes = await connectionNodes(cluster.monitorUrls, Object.values(connections));
  const on = (name: string) => (nodes.has(name) ? `nats-${(nodes.get(name) as number) + 1}` : '?');
  const placement = `Placement: stream leaders ${leaders.join(', ')}; processor connected to ${on(connections.processor)}, bench client to ${on(connections.client)}.`;

  const out = [
    '',
    ...(PROFILE ? ['BENCH_PROFILE=1: the processor ran from source under the CPU profiler; these figures are slower than a normal run.', ''] : []),
    `${machine}; ${load}`,
    '',
    markdownTable(['measure', 'figure', 'target (2 cores)'], rows),
    '',
    `Where one hello_workflow's time goes (${b.count} one-at-a-time runs; from the ms timestamps in the state's first and last revision and the journal):`,
    '',
    markdownTable(['phase', 'median ms', 'mean ms'], phases),
    '',
    'CPU per hello_workflow invocation (user + system from /proc, idle CPU taken out):',
    '',
    markdownTable(
      ['process', 'idle, ms per s', 'ms per invocation, one at a time', `ms per invocation, ${tput.inFlight} in flight`, `cores busy, ${tput.inFlight} in flight`],
      cpuRows,
    ),
    '',
    "NATS messages per hello_workflow invocation (the connections' counts in the servers' /connz):",
    '',
    markdownTable(['connection', 'one at a time', `${tput.inFlight} in flight`], messageRows),
    '',
    placement,
    '',
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  const warnings = apps.filter((a) => /WARN|ERROR|FATAL/.test(a.logTail(1_000))).map((a) => a.logFile);
  if (warnings.length > 0) progress(`warnings or errors were logged, see ${warnings.join(', ')}`);
}

/** The raw rows of one cluster: a publish awaiting each ack, and pipelined publishes. */
/** The sleepers' rows: CPU while they wait, how late their timers fired and they went on. */
function sleeperRows(naps: SleepersFigures, idle: Map<string, number | undefined>, idleSeconds: number): string[][] {
  return [
    [
      `${count(naps.count)} invocations asleep at once (${naps.sleepMs / 1000} s each): CPU while they wait, ms per s`,
      ['processor', 'nats-server ×3']
        .map((group) => `${group} ${ms(naps.cpuPerSecond.get(group) ?? Number.NaN)} (idle ${ms((idle.get(group) ?? Number.NaN) / idleSeconds)})`)
        .join(', ') + `; all asleep ${ratio(naps.allAsleepSeconds, 1)} s after the first submit`,
      'as idle: nothing held in memory',
    ],
    // Timers are scheduled messages: the server stores a fired one itself, with no publish a
    // subscriber could see, so only the lateness of the workflows going on is measured.
    ...(naps.firing.count > 0
      ? [
          [
            `${count(naps.count)} sleepers: how late each timer fired (its resume command stored − due time)`,
            `p50 ${count(naps.firing.p50)} ms, p99 ${count(naps.firing.p99)} ms, max ${count(naps.firingMaxMs)} ms (${count(naps.firing.count)} seen)`,
            `< 1,000 ms: ${verdict(naps.firingMaxMs < 1_000)}`,
          ],
        ]
      : []),
    [
      `${count(naps.count)} sleepers: how late each went on (journaled now after the sleep − due time)`,
      `p50 ${count(naps.lateness.p50)} ms, p99 ${count(naps.lateness.p99)} ms, max ${count(naps.latenessMaxMs)} ms`,
      'the timers fire on time; a burst of wake-ups is then run at the throughput above',
    ],
  ];
}

/** Stored records at the end of a run and once its retention has passed, against the baseline before it. */
function retentionRows(k: RetentionFigures): string[][] {
  const sum = (stored: RetentionFigures['peak']) => ({
    messages: stored.reduce((a, s) => a + s.messages, 0),
    bytes: stored.reduce((a, s) => a + s.bytes, 0),
    subjects: stored.reduce((a, s) => a + s.subjects, 0),
  });
  const show = (t: ReturnType<typeof sum>) => `${count(t.messages)} messages, ${count(Math.round(t.bytes / 1024))} KiB, ${count(t.subjects)} subjects`;
  const back = Number.isNaN(k.backAfterMs) ? `not back within the wait: ${show(sum(k.after))}` : `back to baseline ${ratio(k.backAfterMs / 1000, 1)} s after the last ended`;
  return [
    [
      `stored records, ${count(k.invocations)} hello_workflow with --retention ${k.retentionMs / 1000}s (COMMANDS, JOURNAL, state, index, awakeables)`,
      `baseline ${show(sum(k.baseline))}; at the end ${show(sum(k.peak))}; ${back}`,
      `baseline once the retention has passed: ${verdict(!Number.isNaN(k.backAfterMs))}`,
    ],
  ];
}

function rawRows(figures: RawFigures, policy: string): string[][] {
  return [
    [
      `raw: R3 publish, awaiting each ack (${count(figures.options.sequential)}); ${policy}`,
      `p50 ${ms(figures.publish.p50)} ms, p99 ${ms(figures.publish.p99)} ms (servers' CPU ${ms(figures.serverCpuPerPublish)} ms per publish)`,
      '',
    ],
    [
      `raw: R3 publish, ${figures.options.inFlight} in flight (${count(figures.options.pipelinedCount)}); ${policy}`,
      `${count(figures.pipelinedRate)} msgs/s (servers' CPU ${ms(figures.serverCpuPerPipelined)} ms per publish)`,
      '',
    ],
  ];
}

/** The raw figures on a second cluster with the server's default sync_interval, stopped after. */
async function rawWithDefaultSync(options: RawOptions): Promise<RawFigures> {
  const other = await startCluster({ ...DEFAULT_SYNC_PORTS, syncInterval: 'default' });
  try {
    const otherNc = await connectNats({ servers: other.urls, name: BENCH_CONNECTION, maxAttempts: 3 });
    try {
      const group: CpuGroup[] = [{ name: 'servers', pids: serverPids(other).length === 3 ? serverPids(other) : [-1] }];
      return await rawBaselines(otherNc, options, () => cpuSnapshot(group).get('servers') ?? Number.NaN);
    } finally {
      await otherNc.close();
    }
  } finally {
    await other.stop();
  }
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

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const app of apps) await app.stop().catch(() => undefined);
    await nc?.close().catch(() => undefined);
    await cluster?.stop().catch(() => undefined);
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

try {
  await main();
  progress('stopping the processor, HelloService and the cluster');
  await cleanup();
  if (PROFILE) printProfile();
  progress('done');
} catch (err) {
  process.stderr.write(`bench failed: ${errorMessage(err)}\n`);
  await cleanup();
  process.exitCode = 1;
}
