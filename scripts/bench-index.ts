/**
 * `make bench-index`: how fast list pages and stats answer when the execution index holds
 * BENCH_INDEX_N invocations (default 1,000,000), on a 3-node cluster of its own run as
 * shipped (`sync_interval: always`; client ports 25222-25224, routes 27222-27224,
 * monitoring 29222-29224; BENCH_CLIENT_PORT, BENCH_ROUTE_PORT and BENCH_MONITOR_PORT move
 * them). See scripts/bench/index-scale.ts for what is filled and timed.
 *
 * Prints the machine and a markdown table (stdout; progress goes to stderr), then stops
 * the cluster and removes its data, also on failure and Ctrl+C.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { connectNats, errorMessage, setupEngine } from '../packages/core/src/index.js';
import { type NatsCluster, natsServerBinary, startCluster } from '../test/support/nats-cluster.js';
import { indexScale } from './bench/index-scale.js';
import { count, markdownTable, ms, nowMs } from './bench/stats.js';

/** The target of every query, ms (p50 and p99). */
const TARGET_MS = 50;

const PORTS = {
  clientPort: intFromEnv('BENCH_CLIENT_PORT', 25222),
  routePort: intFromEnv('BENCH_ROUTE_PORT', 27222),
  monitorPort: intFromEnv('BENCH_MONITOR_PORT', 29222),
};
const N = intFromEnv('BENCH_INDEX_N', 1_000_000);

const started = nowMs();
let cluster: NatsCluster | undefined;
let nc: NatsConnection | undefined;

function intFromEnv(name: string, fallback: number): number {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name}=${value} is not a positive integer`);
  return n;
}

function progress(message: string): void {
  process.stderr.write(`[${((nowMs() - started) / 1000).toFixed(1).padStart(6)} s] ${message}\n`);
}

async function main(): Promise<void> {
  const serverVersion = execFileSync(natsServerBinary(), ['--version'], { encoding: 'utf8' }).trim().replace(/^nats-server:\s*/, '');
  const machine = `Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}, nats-server ${serverVersion}`;
  const load = `load average before the run ${loadavg().map((l) => l.toFixed(2)).join(' / ')} (1 / 5 / 15 min)`;
  progress(`${machine}; ${load}`);

  progress('starting a 3-node cluster (sync_interval always, as shipped)');
  cluster = await startCluster({ ...PORTS, syncInterval: 'always' });
  nc = await connectNats({ servers: cluster.urls, name: 'durable-bench-index', maxAttempts: 3 });
  await setupEngine(nc);

  const { fill, queries } = await indexScale(nc, { n: N, progress });
  const verdict = (p99: number) => (p99 < TARGET_MS ? 'met' : 'MISSED');
  const rows = queries.map((q) => [q.query, ms(q.firstMs), ms(q.latency.p50), ms(q.latency.p99), count(q.returned), verdict(q.latency.p99)]);
  const out = [
    '',
    `${machine}; ${load}`,
    '',
    `${count(fill.n)} invocations filled in ${fill.seconds.toFixed(1)} s (${count(fill.perSecond)} /s, an index entry and a state each); ` +
      `the index holds ${count(fill.indexMessages)} messages, the state bucket ${count(fill.stateMessages)}.`,
    '',
    markdownTable(['query', 'first run ms', 'p50 ms', 'p99 ms', 'returned', `p99 < ${TARGET_MS} ms`], rows),
    '',
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await nc?.close().catch(() => undefined);
    await cluster?.stop().catch(() => undefined);
  })();
  return cleaning;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`\n${sig}: stopping the cluster\n`);
    // The cluster harness's exit handler kills its servers and removes their data.
    process.exit(130);
  });
}

try {
  await main();
  progress('stopping the cluster');
  await cleanup();
  progress('done');
} catch (err) {
  process.stderr.write(`bench-index failed: ${errorMessage(err)}\n`);
  await cleanup();
  process.exitCode = 1;
}
