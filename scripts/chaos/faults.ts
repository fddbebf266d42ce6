/**
 * The faults of a chaos run, each real and each on its own schedule: kill -9 of a random
 * processor (started again at once), SIGSTOP of one past its ownership then SIGCONT, a
 * fourth processor added and removed, kill -9 of the NATS node leading the busiest stream
 * (restarted later), HelloService down for a while, and the node leading the busiest stream
 * cut off from the rest and healed (scripts/chaos/partition.ts; when the nodes run in network
 * namespaces, else skipped with the reason).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NatsConnection } from '@nats-io/transport-node';
import { type NatsCluster, nodeDir, nodeName } from '../../test/support/nats-cluster.js';
import type { Fleet, ProcessorSlot } from './fleet.js';
import { type PartitionOutcome, partitionNode } from './partition.js';
import type { FaultPlan } from './settings.js';

/** What the faults did. */
export interface FaultCounts {
  processorKills: number;
  processorStops: number;
  processorsAdded: number;
  processorsRemoved: number;
  nodeKills: number;
  nodeRestarts: number;
  serviceOutages: number;
  /** When HelloService was down (from, to; unix ms): no workflow can make progress then. */
  serviceDown: [number, number][];
  /** The partition, when it ran. */
  partition: PartitionOutcome | undefined;
  /** Why the partition did not run (no network namespaces here), if it did not. */
  partitionSkipped: string | undefined;
  /** Faults that could not be done (a node leader not found, a restart that failed), with why. */
  problems: string[];
}

/** The streams whose leader's node is killed: the busier of the two. */
const LEADER_STREAMS = ['COMMANDS', 'KV_EXECUTION_STATE'];
/** How many processors run besides the fourth one. */
const BASE_PROCESSORS = 3;

/** Runs every fault on its schedule from `startedAt`; resolves when all are over. */
export async function runFaults(
  plan: FaultPlan,
  deps: { fleet: Fleet; cluster: NatsCluster; nc: NatsConnection; startedAt: number; log: (line: string) => void; partitionSkipped?: string },
): Promise<FaultCounts> {
  const counts: FaultCounts = {
    processorKills: 0,
    processorStops: 0,
    processorsAdded: 0,
    processorsRemoved: 0,
    nodeKills: 0,
    nodeRestarts: 0,
    serviceOutages: 0,
    serviceDown: [],
    partition: undefined,
    partitionSkipped: deps.partitionSkipped,
    problems: [],
  };
  const { fleet, cluster, startedAt } = deps;
  const at = (ms: number) => sleep(Math.max(0, startedAt + ms - Date.now()));
  const log = (line: string) => deps.log(`[${((Date.now() - startedAt) / 1000).toFixed(1)} s] ${line}`);
  const attempt = async (what: string, fault: () => Promise<void>) => {
    try {
      await fault();
    } catch (err) {
      const why = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
      counts.problems.push(`${what}: ${why}`);
      log(`${what} failed: ${why}`);
    }
  };
  const base = () => fleet.slots.slice(0, BASE_PROCESSORS);

  const killLoop = async () => {
    for (let t = plan.killFromMs; t < plan.faultsUntilMs; t += plan.killEveryMs) {
      await at(t);
      // A slot whose restart failed earlier gets another go.
      for (const empty of base().filter((s) => s.current === undefined && !s.stopped)) {
        await attempt(`restart of ${empty.name}`, () => fleet.startProcessor(empty));
      }
      const victim = pick(base().filter((s) => s.current !== undefined && !s.stopped));
      if (!victim) continue;
      await fleet.endProcessor(victim, 'SIGKILL');
      counts.processorKills++;
      log(`kill -9 ${victim.name}`);
      await attempt(`restart of ${victim.name}`, () => fleet.startProcessor(victim));
    }
  };

  const stopOne = async () => {
    await at(plan.stopAtMs);
    const victim = pick(base().filter((s) => s.current !== undefined && !s.stopped));
    if (!victim?.current) return;
    const proc = victim.current;
    victim.stopped = true;
    proc.kill('SIGSTOP');
    counts.processorStops++;
    log(`SIGSTOP ${victim.name} for ${plan.stopForMs / 1000} s`);
    await sleep(plan.stopForMs);
    proc.kill('SIGCONT');
    victim.stopped = false;
    log(`SIGCONT ${victim.name}`);
  };

  const fourth = async () => {
    await at(plan.extraAtMs);
    let slot: ProcessorSlot | undefined;
    await attempt('adding a processor', async () => {
      slot = await fleet.addProcessor();
      counts.processorsAdded++;
      log(`added ${slot.name}`);
    });
    await at(plan.extraUntilMs);
    if (!slot) return;
    await fleet.endProcessor(slot, 'SIGTERM');
    counts.processorsRemoved++;
    log(`removed ${slot.name} (SIGTERM)`);
  };

  const nodeLoss = async () => {
    await at(plan.nodeKillAtMs);
    await attempt('killing a stream leader', async () => {
      const { stream, node } = await busiestLeader(cluster.monitorUrls);
      const pid = Number.parseInt(readFileSync(join(nodeDir(cluster.dataDir, node), 'nats-server.pid'), 'utf8'), 10);
      process.kill(pid, 'SIGKILL');
      counts.nodeKills++;
      log(`kill -9 ${nodeName(node)}, leader of ${stream}, for ${plan.nodeDownMs / 1000} s`);
      await sleep(plan.nodeDownMs);
      await cluster.stopNode(node); // forgets the dead process
      await cluster.startNode(node);
      counts.nodeRestarts++;
      log(`${nodeName(node)} restarted, cluster ready`);
    });
  };

  const serviceOutage = async () => {
    await at(plan.serviceKillAtMs);
    const downAt = Date.now();
    await fleet.killHello();
    counts.serviceOutages++;
    log(`kill -9 HelloService for ${plan.serviceDownMs / 1000} s`);
    await sleep(plan.serviceDownMs);
    await attempt('restarting HelloService', () => fleet.startHello());
    counts.serviceDown.push([downAt, Date.now()]);
    log('HelloService restarted');
  };

  const partition = async () => {
    if (counts.partitionSkipped !== undefined) return;
    await at(plan.partitionAtMs);
    await attempt('cutting a stream leader off', async () => {
      const { stream, node } = await busiestLeader(cluster.monitorUrls);
      counts.partition = await partitionNode({ cluster, nc: deps.nc, node, stream, cutMs: plan.partitionForMs, log });
    });
  };

  // The partition after the node loss, never during it: two nodes away is no majority.
  await Promise.all([killLoop(), stopOne(), fourth(), nodeLoss().then(partition), serviceOutage()]);
  return counts;
}

/** The leader of the busiest of {@link LEADER_STREAMS} (most writes), from a node's `/jsz`. */
async function busiestLeader(monitorUrls: readonly string[]): Promise<{ stream: string; node: number }> {
  for (const url of monitorUrls) {
    try {
      const res = await fetch(`${url}/jsz?accounts=true&streams=true`, { signal: AbortSignal.timeout(2_000) });
      const streams = streamDetails(await res.json());
      const busiest = streams
        .filter((s) => LEADER_STREAMS.includes(s.name) && s.leader !== undefined)
        .sort((a, b) => b.lastSeq - a.lastSeq)[0];
      const node = busiest?.leader?.match(/^nats-(\d+)$/)?.[1];
      if (busiest && node !== undefined) return { stream: busiest.name, node: Number(node) - 1 };
    } catch {
      // that node does not answer: ask the next
    }
  }
  throw new Error(`no node named a leader of ${LEADER_STREAMS.join(' or ')}`);
}

interface StreamDetail {
  name: string;
  leader: string | undefined;
  lastSeq: number;
}

/** The streams of a `/jsz?accounts=true&streams=true` answer. */
function streamDetails(jsz: unknown): StreamDetail[] {
  const accounts = (jsz as { account_details?: { stream_detail?: unknown[] }[] }).account_details ?? [];
  return accounts.flatMap((a) =>
    (a.stream_detail ?? []).map((raw) => {
      const s = raw as { name?: string; cluster?: { leader?: string }; state?: { last_seq?: number } };
      return { name: s.name ?? '', leader: s.cluster?.leader, lastSeq: s.state?.last_seq ?? 0 };
    }),
  );
}

function pick<T>(items: readonly T[]): T | undefined {
  return items[Math.floor(Math.random() * items.length)];
}
