/**
 * CPU time of the bench's processes, from /proc (Linux): on a 2-core machine that runs
 * three servers, the processor, HelloService and the client, CPU is what runs out first,
 * so how much each process spends per invocation says where throughput goes.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** Clock ticks per second of /proc/<pid>/stat; 100 on every Linux we run on. */
const TICKS_PER_SECOND = 100;

/** A named set of processes whose CPU time is summed. */
export interface CpuGroup {
  name: string;
  pids: number[];
}

/** CPU ms (user + system) of each group, or undefined where /proc cannot be read. */
export type CpuSnapshot = Map<string, number | undefined>;

function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
    return ((utime + stime) * 1000) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

export function cpuSnapshot(groups: readonly CpuGroup[]): CpuSnapshot {
  const snapshot: CpuSnapshot = new Map();
  for (const group of groups) {
    let total: number | undefined = 0;
    for (const pid of group.pids) {
      const ms = pid === process.pid ? cpuOfThisProcess() : processCpuMs(pid);
      total = ms === undefined || total === undefined ? undefined : total + ms;
    }
    snapshot.set(group.name, total);
  }
  return snapshot;
}

function cpuOfThisProcess(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** CPU ms each group spent between two snapshots. */
export function cpuBetween(before: CpuSnapshot, after: CpuSnapshot): Map<string, number | undefined> {
  const delta = new Map<string, number | undefined>();
  for (const [name, end] of after) {
    const start = before.get(name);
    delta.set(name, end === undefined || start === undefined ? undefined : end - start);
  }
  return delta;
}

/** What each group burns doing nothing (timers, heartbeats, Raft), measured over `seconds`. */
export interface IdleCpu {
  used: Map<string, number | undefined>;
  seconds: number;
}

/** Measures each group's CPU over `ms` of doing nothing. */
export async function idleCpu(snapshot: () => CpuSnapshot, ms: number): Promise<IdleCpu> {
  const before = snapshot();
  const start = performance.now();
  await sleep(ms);
  return { used: cpuBetween(before, snapshot()), seconds: (performance.now() - start) / 1000 };
}

/** A group's idle CPU, ms per second (NaN when unknown). */
export function idlePerSecond(idle: IdleCpu, group: string): number {
  const used = idle.used.get(group);
  return used === undefined ? Number.NaN : used / idle.seconds;
}

/**
 * A group's CPU ms per invocation over a run of `n` invocations that took `seconds`, with
 * what the group would have burnt idle over the same time taken out (NaN when unknown).
 */
export function netPerInvocation(used: number | undefined, idle: IdleCpu, group: string, seconds: number, n: number): number {
  return used === undefined ? Number.NaN : (used - idlePerSecond(idle, group) * seconds) / n;
}
