/**
 * A 3-node JetStream cluster of local `nats-server` processes on loopback: the one helper
 * behind the test suite (test/support/global-setup.ts) and `scripts/cluster.sh` (the
 * `make cluster-up` cluster, which mirrors docker-compose.yml).
 *
 * Each node gets a directory `<dataDir>/nats-N` holding its generated config, JetStream
 * store, log and pid file. Readiness is real: every node's `/healthz` answers ok AND every
 * node knows the JetStream meta leader (`/healthz` alone can pass before one is elected,
 * when the first stream creation would still fail).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { NodeNetwork, netnsUnavailable } from './netns.js';

/** The checkout's root directory. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** How many nodes a cluster has; their server names are `nats-1` .. `nats-3`. */
export const CLUSTER_SIZE = 3;

/** The cluster name, as in deploy/nats/cluster.conf. */
export const CLUSTER_NAME = 'durable';

/** Base ports of a cluster: node `i` (0-based) listens on `base + i`. */
export interface ClusterPorts {
  /** Client port of the first node. */
  clientPort: number;
  /** Cluster (route) port of the first node. */
  routePort: number;
  /** Monitoring (HTTP) port of the first node. */
  monitorPort: number;
}

/** The `make cluster-up` cluster: the same ports as docker-compose.yml. */
export const DEV_CLUSTER_PORTS: ClusterPorts = { clientPort: 4222, routePort: 6222, monitorPort: 8222 };

/**
 * The test suite's cluster: clear of a dev cluster running at the same time. Set
 * `DURABLE_TEST_NATS_PORT` to move it (routes at +2000, monitoring at +4000), e.g. to run
 * two suites side by side (keep all three below 32768, where the system picks the local
 * ports of outgoing connections).
 */
export const TEST_CLUSTER_PORTS: ClusterPorts = testClusterPorts(process.env.DURABLE_TEST_NATS_PORT);

/**
 * Ports `offset` past the suite's cluster, for a test file that starts a cluster of its
 * own (to kill its nodes). Taken: +3 leader-election, +6 secured-nats, +9 service-tls,
 * +12 consumer-state-loss, +15 write-election.
 */
export function ownClusterPorts(offset: number): ClusterPorts {
  const { clientPort, routePort, monitorPort } = TEST_CLUSTER_PORTS;
  return { clientPort: clientPort + offset, routePort: routePort + offset, monitorPort: monitorPort + offset };
}

function testClusterPorts(base: string | undefined): ClusterPorts {
  const clientPort = base === undefined || base === '' ? 14222 : Number.parseInt(base, 10);
  if (!Number.isInteger(clientPort) || clientPort < 1024 || clientPort > 60_000) {
    throw new Error(`DURABLE_TEST_NATS_PORT must be a port from 1024 to 60000, not ${JSON.stringify(base)}`);
  }
  return { clientPort, routePort: clientPort + 2000, monitorPort: clientPort + 4000 };
}

/** Options of {@link startCluster}. */
export interface ClusterOptions extends ClusterPorts {
  /** Interface every port binds to. @default '127.0.0.1' */
  host: string;
  /** Where the nodes keep config, store, log and pid. @default a fresh temp dir, removed by `stop()` */
  dataDir?: string;
  /** Run the servers in their own session so they outlive this process (scripts/cluster.sh). @default false */
  detached: boolean;
  /** JetStream `max_memory_store` per node, bytes. @default the server's (75% of RAM) */
  jetstreamMaxMemory?: number;
  /** JetStream `max_file_store` per node, bytes. @default the server's (75% of free disk) */
  jetstreamMaxStore?: number;
  /** How long to wait for readiness before failing. @default 30_000 */
  readyTimeoutMs: number;
  /**
   * JetStream's `sync_interval`: `always` fsyncs each write before it is acknowledged, as
   * deploy/nats/cluster.conf ships (all three nodes on one host can lose power at once);
   * `default` leaves it to the server (a flush every 2 minutes; faster, see the README's
   * Guarantees). @default 'always'
   */
  syncInterval: SyncInterval;
  /**
   * `loopback`: every node on `host`. `netns`: each node in a network namespace of its own
   * (Linux, root; test/support/netns.ts), at an address of its own on a bridge, so that one
   * can be cut off from the others and from this process (`NatsCluster.network`). Ports and
   * `host` stay as given for loopback; with `netns` the nodes keep the ports and take the
   * namespace addresses. @default 'loopback'
   */
  network: 'loopback' | 'netns';
  /**
   * A secured cluster: clients must use TLS and authenticate (test/support/secured-nats.ts
   * makes the files and the authorization). Routes and monitoring stay plain; the URLs
   * become `tls://`. @default none: plain, open to anyone
   */
  security?: ClusterSecurity;
}

/** What secures a cluster's client port. */
export interface ClusterSecurity {
  /** The servers' certificate and key, and the CA whose client certificates they accept (PEM files). */
  tls: { certFile: string; keyFile: string; caFile: string };
  /** Server config lines that authenticate clients: an `authorization` block, or operator, resolver and accounts. */
  authorization: string;
}

/** The choices of {@link ClusterOptions.syncInterval}. */
export const SYNC_INTERVALS = ['always', 'default'] as const;

/** One of {@link SYNC_INTERVALS}. */
export type SyncInterval = (typeof SYNC_INTERVALS)[number];

/** Defaults of {@link ClusterOptions}. */
export const DEFAULT_CLUSTER_OPTIONS: ClusterOptions = {
  ...TEST_CLUSTER_PORTS,
  host: '127.0.0.1',
  detached: false,
  readyTimeoutMs: 30_000,
  syncInterval: 'always',
  network: 'loopback',
};

/** A running cluster. Node indexes are 0-based: node `i` is `nats-${i + 1}` at `urls[i]`. */
export interface NatsCluster {
  /** Client URL of each node. */
  urls: string[];
  /** All client URLs comma-joined, the form `NATS_URL` takes. */
  url: string;
  /** Monitoring base URL of each node (`${monitorUrls[i]}/healthz`). */
  monitorUrls: string[];
  /** The directory holding every node's files. */
  dataDir: string;
  /** Stops every node (SIGTERM, SIGKILL after 10 s); removes the data dir if it was a temp one. */
  stop(): Promise<void>;
  /** Stops one node; the others keep running. `kill`: SIGKILL at once, as a crash. */
  stopNode(i: number, options?: { kill?: boolean }): Promise<void>;
  /** Starts a stopped node again with its data, and waits until the cluster is ready. */
  startNode(i: number): Promise<void>;
  /** The nodes' namespaces, to cut a node off and heal it; undefined on loopback. */
  network: NodeNetwork | undefined;
}

/** Thrown when a cluster cannot be started or does not become ready. */
export class ClusterError extends Error {
  override name = 'ClusterError';
}

const STOP_GRACE_MS = 10_000;
const POLL_INTERVAL_MS = 100;

let binary: string | undefined;

/**
 * The path of a `nats-server` >= 2.12, from scripts/install-nats-server.sh (run once per
 * process: it takes `$NATS_SERVER`, the cached copy under .tools/, the PATH, or Debian's).
 */
export function natsServerBinary(): string {
  if (binary === undefined) {
    const script = join(REPO_ROOT, 'scripts/install-nats-server.sh');
    // stderr inherited: a first install reports its progress, a failure its reason.
    const out = execFileSync(script, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    binary = out.trim().split('\n').pop() ?? '';
    if (binary === '') throw new ClusterError(`${script} printed no path`);
  }
  return binary;
}

/** The name of node `i` (0-based). */
export function nodeName(i: number): string {
  return `nats-${i + 1}`;
}

/** The directory of node `i` under a cluster's data dir. */
export function nodeDir(dataDir: string, i: number): string {
  return join(dataDir, nodeName(i));
}

/** The client URLs of a cluster. */
export function clientUrls(ports: ClusterPorts, host = '127.0.0.1'): string[] {
  return nodeIndexes().map((i) => `nats://${host}:${ports.clientPort + i}`);
}

/** The monitoring base URLs of a cluster. */
export function monitorUrls(ports: ClusterPorts, host = '127.0.0.1'): string[] {
  return nodeIndexes().map((i) => `http://${host}:${ports.monitorPort + i}`);
}

/**
 * Starts a 3-node cluster and waits until it is ready.
 * @throws ClusterError when a port is taken, a server exits, or readiness times out.
 * @example
 * const cluster = await startCluster({ clientPort: 15222, routePort: 17222, monitorPort: 19222 });
 * process.env.NATS_URL = cluster.url;
 * // ...
 * await cluster.stop();
 */
export async function startCluster(options: Partial<ClusterOptions> = {}): Promise<NatsCluster> {
  const opts: ClusterOptions = { ...DEFAULT_CLUSTER_OPTIONS, ...options };
  const tempDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir === undefined ? mkdtempSync(join(tmpdir(), 'nats-cluster-')) : resolve(opts.dataDir);
  const server = natsServerBinary();
  const network = opts.network === 'netns' ? nodeNetwork(opts) : undefined;
  // Fresh namespaces hold no ports.
  if (!network) await assertPortsFree(opts);

  const children: (ChildProcess | undefined)[] = nodeIndexes().map(() => undefined);
  const hosts = nodeIndexes().map((i) => network?.address(i) ?? opts.host);
  const scheme = opts.security ? 'tls' : 'nats';
  const urls = nodeIndexes().map((i) => `${scheme}://${hosts[i]}:${opts.clientPort + i}`);
  const monitors = nodeIndexes().map((i) => `http://${hosts[i]}:${opts.monitorPort + i}`);

  const startNode = (i: number): void => {
    const dir = nodeDir(dataDir, i);
    mkdirSync(dir, { recursive: true });
    const config = join(dir, 'nats.conf');
    writeFileSync(config, nodeConfig(opts, hosts, dir, i));
    // The log file is the child's stdout and stderr: nothing to drain, and a crash's own
    // output (a Go panic) lands beside the server's log lines.
    const log = openSync(join(dir, 'nats-server.log'), 'a');
    // `ip netns exec` execs the server in place: the pid is the server's.
    const [command, args] = network ? ['ip', [...network.execArgs(i), server, '--config', config]] : [server, ['--config', config]];
    const child = spawn(command, args, { detached: opts.detached, stdio: ['ignore', log, log] });
    closeSync(log);
    // A failed spawn also emits 'error'; the throw below reports it, so no crash on that event.
    child.once('error', () => undefined);
    if (child.pid === undefined) throw new ClusterError(`${nodeName(i)}: could not spawn ${server}`);
    writeFileSync(pidFile(dataDir, i), `${child.pid}\n`);
    children[i] = child;
    if (opts.detached) child.unref();
    else ownedChildren.add(child);
    child.once('exit', () => ownedChildren.delete(child));
  };

  const stopNode = async (i: number, options: { kill?: boolean } = {}): Promise<void> => {
    const child = children[i];
    children[i] = undefined;
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      await stopPid(child.pid, options.kill ? 'SIGKILL' : 'SIGTERM');
    }
    removePidFile(dataDir, i);
  };

  const stop = async (): Promise<void> => {
    await Promise.all(nodeIndexes().map((i) => stopNode(i)));
    if (network) {
      network.tearDown();
      ownedNetworks.delete(network);
    }
    if (tempDir) {
      rmSync(dataDir, { recursive: true, force: true });
      ownedTempDirs.delete(dataDir);
    }
  };

  if (tempDir) ownedTempDirs.add(dataDir);
  if (network) ownedNetworks.add(network);
  installExitHandlers();
  try {
    // One node after the other, each once it answers: servers started at the same instant
    // race their routes ("Duplicate Route"), and now and then the meta leader then never
    // counts one of them as a peer.
    for (const i of nodeIndexes()) {
      startNode(i);
      await waitForAnswer(monitors[i] ?? '', children[i], opts.readyTimeoutMs);
    }
    await waitForCluster(monitors, { timeoutMs: opts.readyTimeoutMs, children, dataDir });
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    urls,
    url: urls.join(','),
    monitorUrls: monitors,
    dataDir,
    stop,
    stopNode,
    network,
    startNode: async (i: number) => {
      if (children[i] !== undefined) throw new ClusterError(`${nodeName(i)} is already running`);
      startNode(i);
      await waitForCluster(monitors, { timeoutMs: opts.readyTimeoutMs, children, dataDir });
    },
  };
}

/**
 * The namespaces of a `netns` cluster, made afresh (what a killed run on these ports left is
 * removed first).
 * @throws ClusterError in one line when they cannot be made here (not root, no `ip`).
 */
function nodeNetwork(opts: ClusterOptions): NodeNetwork {
  const why = netnsUnavailable();
  if (why !== undefined) throw new ClusterError(why);
  if (opts.detached) throw new ClusterError('a netns cluster cannot be detached: its namespaces go with this process');
  const network = NodeNetwork.forPort(opts.clientPort);
  try {
    network.setUp(CLUSTER_SIZE);
  } catch (err) {
    network.tearDown();
    throw new ClusterError(err instanceof Error ? err.message : String(err));
  }
  return network;
}

/** The config of node `i` (at `hosts[i]`): same topology as deploy/nats, with distinct ports. */
function nodeConfig(opts: ClusterOptions, hosts: readonly string[], dir: string, i: number): string {
  const routes = nodeIndexes().map((n) => `    nats-route://${hosts[n]}:${opts.routePort + n}`);
  const limits = [
    opts.jetstreamMaxMemory === undefined ? '' : `  max_memory_store: ${opts.jetstreamMaxMemory}`,
    opts.jetstreamMaxStore === undefined ? '' : `  max_file_store: ${opts.jetstreamMaxStore}`,
  ].filter((line) => line !== '');
  return [
    `# Generated by test/support/nats-cluster.ts; rewritten on every start.`,
    `server_name: ${nodeName(i)}`,
    `listen: ${hosts[i]}:${opts.clientPort + i}`,
    `http: ${hosts[i]}:${opts.monitorPort + i}`,
    `jetstream {`,
    `  store_dir: ${JSON.stringify(dir)}`,
    // deploy/nats/cluster.conf says why `always`, and what the default costs in durability.
    ...(opts.syncInterval === 'always' ? ['  sync_interval: always'] : ['  # sync_interval: server default (2 min)']),
    ...limits,
    `}`,
    ...(opts.security ? securityConfig(opts.security) : []),
    `cluster {`,
    `  name: ${CLUSTER_NAME}`,
    `  listen: ${hosts[i]}:${opts.routePort + i}`,
    // Commas between entries, or the list does not parse as separate routes.
    `  routes: [\n${routes.join(',\n')}\n  ]`,
    `}`,
    ``,
  ].join('\n');
}

/**
 * TLS on the client port, client certificates verified against the CA, and the
 * authorization. The handshake may take 5 s (the default, 2 s, is tight on a busy 2-core machine).
 */
function securityConfig(security: ClusterSecurity): string[] {
  const { certFile, keyFile, caFile } = security.tls;
  return [
    `tls {`,
    `  cert_file: ${JSON.stringify(certFile)}`,
    `  key_file: ${JSON.stringify(keyFile)}`,
    `  ca_file: ${JSON.stringify(caFile)}`,
    `  verify: true`,
    `  timeout: 5`,
    `}`,
    security.authorization,
  ];
}

/** Options of {@link waitForCluster}. */
export interface WaitOptions {
  /** @default 30_000 */
  timeoutMs?: number;
  /** Processes whose early exit fails the wait at once (with their log). */
  children?: readonly (ChildProcess | undefined)[];
  /** Where the children's logs are, for the error message. */
  dataDir?: string;
}

/**
 * Waits until every node's `/healthz` is ok and every node reports a JetStream meta leader
 * in `/jsz`. Polls, since a server's readiness is not an event we can subscribe to.
 * @throws ClusterError naming the node that is not ready, and why, after the deadline.
 */
export async function waitForCluster(monitors: readonly string[], options: WaitOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const exited = options.children?.findIndex((c) => c !== undefined && (c.exitCode !== null || c.signalCode !== null));
    if (exited !== undefined && exited >= 0) {
      const log = options.dataDir ? `\n${logTail(join(nodeDir(options.dataDir, exited), 'nats-server.log'))}` : '';
      throw new ClusterError(`${nodeName(exited)} exited while starting${log}`);
    }
    const problems = (await Promise.all(monitors.map(nodeProblem))).map((p, i) => (p ? `${nodeName(i)} (${monitors[i]}): ${p}` : ''));
    const notReady = problems.filter((p) => p !== '');
    if (notReady.length === 0) return;
    if (Date.now() >= deadline) {
      throw new ClusterError(`NATS cluster not ready after ${timeoutMs / 1000} s:\n  ${notReady.join('\n  ')}`);
    }
    await sleep(POLL_INTERVAL_MS);
  }
}

/** Why a node is not ready, or '' when it is. */
export async function nodeProblem(monitorUrl: string): Promise<string> {
  try {
    const health = await fetch(`${monitorUrl}/healthz`, { signal: AbortSignal.timeout(2_000) });
    if (!health.ok) return `/healthz answered ${health.status}: ${(await health.text()).trim()}`;
    const jsz = await fetch(`${monitorUrl}/jsz`, { signal: AbortSignal.timeout(2_000) });
    if (!jsz.ok) return `/jsz answered ${jsz.status}`;
    const body: unknown = await jsz.json();
    if (!metaLeader(body)) return 'no JetStream meta leader yet';
    // The leader lists its followers; until both are current, creating an R3 stream
    // answers "no suitable peers for placement".
    const lagging = laggingFollowers(body);
    return lagging === 0 ? '' : `${lagging} JetStream peers not current yet`;
  } catch (err) {
    return `not answering (${err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)})`;
  }
}

/**
 * On the meta leader, how many of the other nodes are missing or not current; 0 elsewhere.
 * Servers from 2.12 on list replicas on followers too, the leader among them, as each follower
 * sees them (another follower is never "current" there): only the leader's list counts.
 */
function laggingFollowers(jsz: unknown): number {
  if (typeof jsz !== 'object' || jsz === null || !('meta_cluster' in jsz)) return 0;
  const meta = jsz.meta_cluster;
  if (typeof meta !== 'object' || meta === null || !('replicas' in meta) || !Array.isArray(meta.replicas)) return 0;
  // Servers 2.11+ list replicas on followers too (the leader among them, the other follower
  // not current from there): only the leader's view counts.
  const leader = metaLeader(jsz);
  if (meta.replicas.some((r: unknown) => typeof r === 'object' && r !== null && 'name' in r && r.name === leader)) return 0;
  const current = meta.replicas.filter((r: unknown) => typeof r === 'object' && r !== null && 'current' in r && r.current === true);
  return CLUSTER_SIZE - 1 - current.length;
}

/** `meta_cluster.leader` of a `/jsz` answer, if any. */
function metaLeader(jsz: unknown): string | undefined {
  if (typeof jsz !== 'object' || jsz === null || !('meta_cluster' in jsz)) return undefined;
  const meta = jsz.meta_cluster;
  if (typeof meta !== 'object' || meta === null || !('leader' in meta)) return undefined;
  return typeof meta.leader === 'string' && meta.leader !== '' ? meta.leader : undefined;
}

/** A node started with `detached`, as found from its pid file. */
export interface RunningNode {
  name: string;
  pid: number;
}

/** The nodes under `dataDir` whose pid file names a live nats-server process. */
export function runningNodes(dataDir: string): RunningNode[] {
  return nodeIndexes().flatMap((i) => {
    const pid = readPid(dataDir, i);
    return pid !== undefined && isNatsServer(pid) ? [{ name: nodeName(i), pid }] : [];
  });
}

/**
 * Stops the nodes a detached cluster left under `dataDir` (SIGTERM, SIGKILL after 10 s)
 * and removes their pid files. Returns the nodes it stopped.
 */
export async function stopDetachedCluster(dataDir: string): Promise<RunningNode[]> {
  const running = runningNodes(dataDir);
  await Promise.all(running.map((node) => stopPid(node.pid)));
  nodeIndexes().forEach((i) => removePidFile(dataDir, i));
  return running;
}

/** SIGTERM, then SIGKILL if the process is still alive after the grace period. */
async function stopPid(pid: number, first: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
  if (!signal(pid, first)) return;
  // Not always our child (scripts/cluster.sh down runs in a later process), so no exit
  // event to wait on: poll until the pid is gone.
  const deadline = Date.now() + STOP_GRACE_MS;
  while (isAlive(pid)) {
    if (Date.now() >= deadline) {
      signal(pid, 'SIGKILL');
      break;
    }
    await sleep(50);
  }
  while (isAlive(pid)) await sleep(20);
}

/** Sends a signal (0: only checks the pid exists); false when there is no such process. */
function signal(pid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** True while the process exists and is not a zombie. */
function isAlive(pid: number): boolean {
  if (!signal(pid, 0)) return false;
  try {
    // A child that exited but is not reaped yet still answers kill(0); /proc tells (Linux).
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/** Guards against a stale pid file whose pid now belongs to another program. */
function isNatsServer(pid: number): boolean {
  if (!isAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('nats-server');
  } catch {
    return true; // no /proc (macOS): trust the pid file
  }
}

function pidFile(dataDir: string, i: number): string {
  return join(nodeDir(dataDir, i), 'nats-server.pid');
}

function readPid(dataDir: string, i: number): number | undefined {
  const file = pidFile(dataDir, i);
  if (!existsSync(file)) return undefined;
  const pid = Number.parseInt(readFileSync(file, 'utf8'), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function removePidFile(dataDir: string, i: number): void {
  try {
    unlinkSync(pidFile(dataDir, i));
  } catch {
    // already gone
  }
}

function logTail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return `(no log at ${file})`;
  }
}

/** Waits until a node's monitoring port answers at all (ready or not), or its process exits. */
async function waitForAnswer(monitorUrl: string, child: ChildProcess | undefined, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && child?.exitCode === null && child.signalCode === null) {
    try {
      await fetch(`${monitorUrl}/healthz`, { signal: AbortSignal.timeout(1_000) });
      return;
    } catch {
      await sleep(POLL_INTERVAL_MS);
    }
  }
  // An exit or a timeout is reported by waitForCluster, with the node's log.
}

/** Fails early and clearly when something (a dev cluster, a leftover server) holds a port. */
async function assertPortsFree(opts: ClusterOptions): Promise<void> {
  const ports = nodeIndexes().flatMap((i) => [opts.clientPort + i, opts.routePort + i, opts.monitorPort + i]);
  for (const port of ports) {
    const free = await new Promise<boolean>((done) => {
      const probe = createServer();
      probe.once('error', () => done(false));
      probe.listen(port, opts.host, () => probe.close(() => done(true)));
    });
    if (!free) {
      throw new ClusterError(`port ${port} on ${opts.host} is already in use (another NATS server, or one left from an earlier run?)`);
    }
  }
}

function nodeIndexes(): number[] {
  return Array.from({ length: CLUSTER_SIZE }, (_, i) => i);
}

// Non-detached servers must not outlive this process, however it ends.
const ownedChildren = new Set<ChildProcess>();
const ownedTempDirs = new Set<string>();
const ownedNetworks = new Set<NodeNetwork>();
let exitHandlersInstalled = false;

function installExitHandlers(): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  process.on('exit', killOwned);
  // A test worker whose runner died loses its IPC channel but may linger: its servers go.
  if (process.connected) process.once('disconnect', killOwned);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killOwned();
      process.off(sig, onSignal);
      // Keep the default behaviour (exit by that signal) unless someone else handles it.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

function killOwned(): void {
  for (const child of ownedChildren) child.kill('SIGKILL');
  ownedChildren.clear();
  for (const dir of ownedTempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // a killed server may still be closing files; a stray temp dir is harmless
    }
  }
  ownedTempDirs.clear();
  // After the servers: a namespace goes once nothing runs in it (tearDown kills what does).
  for (const network of ownedNetworks) network.tearDown();
  ownedNetworks.clear();
}
