/**
 * The partition fault of a chaos run: the node leading the busiest stream is cut off from
 * the other two and from the processors (its bridge port down, test/support/netns.ts) for a
 * while, then healed. Beside the processors, whose acknowledged work the checker counts, a
 * client on the cut-off side (scripts/chaos/minority-client.ts, inside the node's namespace)
 * keeps publishing to a probe stream whose leader was moved to that node: a leader cut off
 * from the majority must not acknowledge a write the majority never saw, so every write it
 * was told was stored must be in the stream after the heal.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { type NatsCluster, REPO_ROOT, nodeName, waitForCluster } from '../../test/support/nats-cluster.js';

/** What the partition did and what the minority-side client saw. */
export interface PartitionOutcome {
  /** The node cut off, and the stream it led. */
  node: string;
  stream: string;
  /** How long it was cut off, ms. */
  cutMs: number;
  /** When (unix ms), for the count of submissions acknowledged meanwhile. */
  cutAt: number;
  healedAt: number;
  /** The probe stream's leader when the cut began (the cut node, unless it could not be moved there). */
  probeLeader: string;
  /** Publishes of the minority-side client: acknowledged in all, acknowledged during the cut, not acknowledged. */
  acked: number;
  ackedDuringCut: number;
  unacked: number;
  /** Acknowledged writes not in the probe stream after the heal: must be 0. */
  missing: number;
  missingSamples: string[];
}

/** The probe stream: R3 like the engine's, leader gets only (its reads are the leader's). */
const PROBE_STREAM = 'CHAOS_PROBE';
const PROBE_SUBJECT = 'chaos.probe';
/** How many writes of the minority-side client must be acknowledged before the cut. */
const ACKED_BEFORE_CUT = 20;
/** How long the minority-side client may take to start and have those acknowledged, ms. */
const CLIENT_START_MS = 30_000;
/** How long to wait, after the heal, for the cluster to be ready and the client to be acknowledged again, ms. */
const AFTER_HEAL_MS = 60_000;

/**
 * Cuts node `node` off for `cutMs` with a minority-side client writing to a probe stream it
 * leads, heals it, waits for the cluster, and checks the client's acknowledged writes.
 * @throws Error when the client does not start or the probe stream cannot be read.
 */
export async function partitionNode(
  deps: { cluster: NatsCluster; nc: NatsConnection; node: number; stream: string; cutMs: number; log: (line: string) => void },
): Promise<PartitionOutcome> {
  const { cluster, nc, node, log } = deps;
  const network = cluster.network;
  if (!network) throw new Error('the cluster does not run in network namespaces');
  const probeLeader = await probeStreamLedBy(nc, nodeName(node));

  // One node away at a time: a node restarted just before (the node loss) may still be
  // catching up, and cutting another then leaves some groups without a majority.
  await waitForReplicasCurrent(cluster.monitorUrls, AFTER_HEAL_MS);
  const client = startMinorityClient(network.execArgs(node), cluster.urls[node] ?? '');
  try {
    await client.waitFor((line) => line.kind === 'ack' && line.n >= ACKED_BEFORE_CUT, CLIENT_START_MS, `the minority-side client had not ${ACKED_BEFORE_CUT} writes acknowledged`);
    network.cut(node);
    const cutAt = Date.now();
    log(`cut ${nodeName(node)} (leader of ${deps.stream} and ${PROBE_STREAM}) off for ${deps.cutMs / 1000} s`);
    await sleep(deps.cutMs);
    network.heal(node);
    const healedAt = Date.now();
    log(`healed ${nodeName(node)}`);
    await waitForCluster(cluster.monitorUrls, { timeoutMs: AFTER_HEAL_MS });
    await client.waitFor((line) => line.kind === 'ack' && line.at > healedAt, AFTER_HEAL_MS, 'the minority-side client had no write acknowledged after the heal');
    await client.stop();
    log(`${nodeName(node)} back, cluster ready`);

    const acks = client.lines.filter((l) => l.kind === 'ack');
    const stored = await readProbe(nc);
    const missing = acks.filter((a) => stored.get(a.seq) !== `${PROBE_SUBJECT}.${a.n}`);
    return {
      node: nodeName(node),
      stream: deps.stream,
      cutMs: healedAt - cutAt,
      cutAt,
      healedAt,
      probeLeader,
      acked: acks.length,
      ackedDuringCut: acks.filter((a) => a.at > cutAt && a.at < healedAt).length,
      unacked: client.lines.filter((l) => l.kind === 'fail').length,
      missing: missing.length,
      missingSamples: missing.slice(0, 5).map((a) => `write ${a.n} acknowledged as seq ${a.seq} at ${a.at - cutAt} ms after the cut; the stream holds ${stored.get(a.seq) ?? 'nothing'} there`),
    };
  } finally {
    network.heal(node);
    await client.stop();
  }
}

/** Creates the probe stream and moves its leader to `server`; returns the leader it ends up with. */
async function probeStreamLedBy(nc: NatsConnection, server: string): Promise<string> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: PROBE_STREAM, subjects: [`${PROBE_SUBJECT}.>`], num_replicas: 3, allow_direct: false });
  let leader = '';
  for (let tries = 0; tries < 10; tries++) {
    leader = (await jsm.streams.info(PROBE_STREAM)).cluster?.leader ?? '';
    if (leader === server) return leader;
    // Servers from 2.11 on take a preferred placement for the new leader.
    await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${PROBE_STREAM}`, JSON.stringify({ placement: { preferred: server } }), { timeout: 5_000 }).catch(() => undefined);
    await sleep(500);
  }
  return leader;
}

/**
 * Waits until every stream and consumer has a leader that counts each of its replicas as
 * current (read from each node's `/jsz`, for the groups that node leads).
 * @throws Error naming a lagging group at the deadline.
 */
async function waitForReplicasCurrent(monitorUrls: readonly string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lagging = (await Promise.all(monitorUrls.map((url, i) => laggingGroups(url, nodeName(i))))).flat();
    if (lagging.length === 0) return;
    if (Date.now() >= deadline) throw new Error(`replicas not current after ${timeoutMs / 1000} s: ${lagging.slice(0, 3).join(', ')}`);
    await sleep(200);
  }
}

/** The groups (streams, consumers) `server` leads with a replica not current; every group when it does not answer. */
async function laggingGroups(monitorUrl: string, server: string): Promise<string[]> {
  type Group = { name?: string; cluster?: { leader?: string; replicas?: { name?: string; current?: boolean }[] } };
  type Jsz = { account_details?: { stream_detail?: (Group & { consumer_detail?: Group[] })[] }[] };
  try {
    const res = await fetch(`${monitorUrl}/jsz?accounts=true&streams=true&consumers=true`, { signal: AbortSignal.timeout(2_000) });
    const streams = ((await res.json()) as Jsz).account_details?.flatMap((a) => a.stream_detail ?? []) ?? [];
    const groups = streams.flatMap((s) => [{ ...s, label: s.name ?? '' }, ...(s.consumer_detail ?? []).map((c) => ({ ...c, label: `${s.name} > ${c.name}` }))]);
    return groups
      .filter((g) => g.cluster?.leader === undefined || (g.cluster.leader === server && (g.cluster.replicas ?? []).some((r) => r.current !== true)))
      .map((g) => g.label);
  } catch {
    return [`${server} (not answering)`];
  }
}

/** Every message of the probe stream: subject by sequence, read through an ordered consumer. */
async function readProbe(nc: NatsConnection): Promise<Map<number, string>> {
  for (let tries = 1; ; tries++) {
    try {
      const info = await (await jetstreamManager(nc)).streams.info(PROBE_STREAM);
      const stored = new Map<number, string>();
      if (info.state.messages === 0) return stored;
      const consumer = await jetstream(nc).consumers.get(PROBE_STREAM);
      const messages = await consumer.consume({ max_messages: 1_000 });
      const stall = setTimeout(() => messages.stop(new Error(`reading ${PROBE_STREAM} stalled`)), 10_000);
      try {
        for await (const m of messages) {
          stall.refresh();
          stored.set(m.seq, m.subject);
          if (m.seq >= info.state.last_seq) break;
        }
      } finally {
        clearTimeout(stall);
        messages.stop();
      }
      return stored;
    } catch (err) {
      if (tries >= 5) throw err;
      await sleep(1_000);
    }
  }
}

/** A line the minority-side client printed. */
type ClientLine = { kind: 'ack'; n: number; seq: number; at: number } | { kind: 'fail'; n: number; at: number };

/** The minority-side client, running in the cut node's namespace. */
function startMinorityClient(execArgs: readonly string[], url: string) {
  const child = spawn('ip', [...execArgs, process.execPath, '--import', 'tsx', 'scripts/chaos/minority-client.ts', url, PROBE_SUBJECT], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: ClientLine[] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.once('error', () => undefined);
  let rest = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop() ?? '';
    for (const text of parts) {
      const [kind, n, a, b] = text.split(' ');
      if (kind === 'ack') lines.push({ kind, n: Number(n), seq: Number(a), at: Number(b) });
      else if (kind === 'fail') lines.push({ kind, n: Number(n), at: Number(a) });
    }
    for (const wake of waiters) wake();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
  void exited.then(() => {
    for (const wake of waiters) wake();
  });

  return {
    lines,
    /** Waits until a line matches, or fails with `what` (and the client's stderr) at the deadline or its exit. */
    async waitFor(match: (line: ClientLine) => boolean, timeoutMs: number, what: string): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!lines.some(match)) {
        if (Date.now() >= deadline || child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`${what} within ${timeoutMs / 1000} s${stderr.length > 0 ? `: ${stderr.join('').trim().split('\n').slice(-3).join(' / ')}` : ''}`);
        }
        await new Promise<void>((wake) => {
          const timer = setTimeout(wake, Math.max(0, deadline - Date.now()));
          waiters.add(() => {
            clearTimeout(timer);
            wake();
          });
        });
        waiters.clear();
      }
    },
    async stop(): Promise<void> {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const hard = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(hard);
    },
  };
}
