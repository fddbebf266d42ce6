/**
 * `scripts/cluster.sh up|down|status|wait`: the docker-compose cluster's topology (client ports
 * 4222-4224, routes 6222-6224, monitoring 8222-8224, cluster `durable`) from local
 * nats-server processes that outlive this script. Data, logs and pid files live under
 * .data/cluster/nats-N of the checkout. The logic is the test harness's, so the suite and
 * the dev cluster start servers the same way. `wait` only waits for readiness on those
 * ports, whoever runs the servers (scripts/docker-up.sh uses it after `docker compose up`).
 *
 * The nodes fsync every write before acknowledging it (`sync_interval: always`, as
 * deploy/nats/cluster.conf); `NATS_SYNC_INTERVAL=default` starts them with the server's
 * faster default instead (see the README's Guarantees for what each survives).
 */
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import {
  CLUSTER_SIZE,
  ClusterError,
  DEV_CLUSTER_PORTS,
  REPO_ROOT,
  type RunningNode,
  SYNC_INTERVALS,
  type SyncInterval,
  clientUrls,
  monitorUrls,
  nodeDir,
  nodeName,
  nodeProblem,
  runningNodes,
  startCluster,
  stopDetachedCluster,
  waitForCluster,
} from '../test/support/nats-cluster.js';

const dataDir = join(REPO_ROOT, '.data/cluster');
const monitors = monitorUrls(DEV_CLUSTER_PORTS);
const READY = 'NATS cluster is ready';

/** `NATS_SYNC_INTERVAL`: `always` (the default) or `default`. */
function syncInterval(): SyncInterval {
  const value = process.env.NATS_SYNC_INTERVAL || 'always';
  const known = SYNC_INTERVALS.find((choice) => choice === value);
  if (known === undefined) {
    throw new ClusterError(`NATS_SYNC_INTERVAL must be one of ${SYNC_INTERVALS.join(', ')}, not ${JSON.stringify(value)}`);
  }
  return known;
}

/** The sync policy a node of the running cluster was started with, from its generated config. */
function runningSyncInterval(): SyncInterval | undefined {
  try {
    const config = readFileSync(join(nodeDir(dataDir, 0), 'nats.conf'), 'utf8');
    return /^\s*sync_interval:\s*always\s*$/m.test(config) ? 'always' : 'default';
  } catch {
    return undefined;
  }
}

function describe(nodes: RunningNode[]): string {
  return nodes.map((n) => `${n.name} pid ${n.pid}`).join(', ');
}

async function up(): Promise<number> {
  const sync = syncInterval();
  const running = runningNodes(dataDir);
  if (running.length === CLUSTER_SIZE) {
    console.log(`NATS cluster is already running (${describe(running)})`);
    const current = runningSyncInterval();
    if (current !== undefined && current !== sync) {
      console.log(`It runs with sync_interval ${current}, not ${sync}: \`make cluster-down\` first to change it`);
    }
    await waitForCluster(monitors);
    console.log(READY);
    return 0;
  }
  if (running.length > 0) {
    // Restarting all is simpler than patching a partial cluster, and loses nothing:
    // the JetStream data stays on disk.
    console.log(`Only ${describe(running)} running; restarting the whole cluster`);
    await stopDetachedCluster(dataDir);
  }
  const cluster = await startCluster({ ...DEV_CLUSTER_PORTS, dataDir, detached: true, syncInterval: sync });
  console.log(`NATS cluster started: ${cluster.url} (sync_interval ${sync})`);
  console.log(`Data, logs and pid files in ${relative(process.cwd(), dataDir) || '.'}/nats-{1,2,3}`);
  console.log(READY);
  return 0;
}

async function down(): Promise<number> {
  const stopped = await stopDetachedCluster(dataDir);
  console.log(stopped.length > 0 ? `NATS cluster stopped (${describe(stopped)})` : 'NATS cluster is not running');
  return 0;
}

async function status(): Promise<number> {
  const running = new Map(runningNodes(dataDir).map((n) => [n.name, n.pid]));
  const urls = clientUrls(DEV_CLUSTER_PORTS);
  let ready = 0;
  for (const [i, monitor] of monitors.entries()) {
    const pid = running.get(nodeName(i));
    const problem = await nodeProblem(monitor);
    if (problem === '') ready++;
    const pidText = pid === undefined ? 'not running from .data/cluster' : `pid ${pid}`;
    console.log(`${nodeName(i)}  ${urls[i]}  ${pidText}  ${problem === '' ? 'ready' : problem}`);
  }
  console.log(ready === CLUSTER_SIZE ? READY : `NATS cluster is not ready (${ready} of ${CLUSTER_SIZE} nodes ready)`);
  return ready === CLUSTER_SIZE ? 0 : 1;
}

async function wait(): Promise<number> {
  await waitForCluster(monitors);
  console.log(READY);
  return 0;
}

const commands: Record<string, () => Promise<number>> = { up, down, status, wait };
const command = commands[process.argv[2] ?? ''];
if (command === undefined) {
  console.error('usage: scripts/cluster.sh up|down|status|wait');
  process.exit(2);
}
try {
  process.exitCode = await command();
} catch (err) {
  console.error(err instanceof ClusterError ? err.message : err);
  process.exitCode = 1;
}
