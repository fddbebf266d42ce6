/**
 * Vitest globalSetup: one 3-node JetStream cluster for the whole run, on ports clear of a
 * dev cluster (clients 14222-14224, routes 16222-16224, monitoring 18222-18224), with its
 * data in a temp dir wiped at start and end. Tests read its URLs with `inject('natsUrl')`
 * and `inject('natsMonitorUrls')`.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ClusterError, TEST_CLUSTER_PORTS, type NatsCluster, startCluster, stopDetachedCluster } from './nats-cluster.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Comma-joined client URLs of the test cluster, the form `NATS_URL` takes. */
    natsUrl: string;
    /** Monitoring base URL of each node, e.g. `${natsMonitorUrls[0]}/healthz`. */
    natsMonitorUrls: string[];
  }
}

// Named after its ports rather than random, so a run that was SIGKILLed (whose servers
// outlive it, holding the ports) can be found and cleaned up by the next one.
const dataDir = join(tmpdir(), `durable-test-cluster-${TEST_CLUSTER_PORTS.clientPort}`);
const ownerFile = join(dataDir, 'owner.pid');

/** Starts the cluster and provides its URLs; returns the teardown. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await reclaimLeftovers();
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(ownerFile, `${process.pid}\n`);
  let cluster: NatsCluster;
  try {
    cluster = await startCluster({ ...TEST_CLUSTER_PORTS, dataDir });
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  project.provide('natsUrl', cluster.url);
  project.provide('natsMonitorUrls', cluster.monitorUrls);
  // Workers and the processes tests spawn inherit the environment: code that falls back to
  // NATS_URL reaches the test cluster, never a dev cluster on the default ports.
  process.env.NATS_URL = cluster.url;
  return async () => {
    await cluster.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
}

/** Stops the servers of an earlier run whose runner is gone; refuses if it still runs. */
async function reclaimLeftovers(): Promise<void> {
  if (!existsSync(dataDir)) return;
  const owner = readOwner();
  if (owner !== undefined && owner !== process.pid && isRunning(owner)) {
    throw new ClusterError(`another test run (pid ${owner}) is using the test cluster in ${dataDir}; wait for it to end`);
  }
  const stopped = await stopDetachedCluster(dataDir);
  if (stopped.length > 0) console.warn(`Stopped ${stopped.length} nats-server(s) left by an earlier test run`);
  rmSync(dataDir, { recursive: true, force: true });
}

function readOwner(): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(ownerFile, 'utf8'), 10);
    return Number.isInteger(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
