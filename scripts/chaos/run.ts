/**
 * One chaos run, start to end: its own 3-node cluster, HelloService, TicketService and three
 * processors; the workload submitted while the faults and the malformed input happen; a wait
 * for every invocation to end; then the check. Everything it started is stopped, however it
 * ends, and every process's log is kept in the log dir.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectNats, DurableClient, isTerminal } from '../../packages/core/src/index.js';
import { CHAOS_DONE_KEY } from '../../apps/processor/src/workflows/index.js';
import { CLUSTER_SIZE, type NatsCluster, nodeDir, nodeName, startCluster } from '../../test/support/nats-cluster.js';
import { netnsUnavailable } from '../../test/support/netns.js';
import { check } from './check.js';
import { resolveAwakeables, submitAll, waitForEnds } from './driver.js';
import { runFaults } from './faults.js';
import { Fleet } from './fleet.js';
import { readJournals } from './journals.js';
import { sendMalformed } from './malformed.js';
import type { ChaosReport } from './report.js';
import type { ChaosSettings } from './settings.js';
import { buildWorkload } from './workload.js';

/** How many processors run (a fourth joins and leaves as a fault). */
const PROCESSORS = 3;
/** How long the invocations of malformed commands have to end once the workload has, ms: they fail at once. */
const JUNK_DEADLINE_MS = 30_000;

/** Runs the chaos and returns what it measured. */
export async function runChaos(settings: ChaosSettings): Promise<ChaosReport> {
  const began = Date.now();
  const runId = randomBytes(3).toString('hex');
  const logDir = settings.logDir ?? mkdtempSync(join(tmpdir(), 'durable-chaos-'));
  mkdirSync(logDir, { recursive: true });
  const { log } = settings;
  const { natsClientPort } = settings.ports;
  log(`chaos ${runId}: ${settings.workflows} workflows, logs in ${logDir}`);

  // Each node in a network namespace of its own, so that one can be cut off; where that
  // cannot be (not root, no `ip`), on loopback and the partition is skipped with the reason.
  const partitionSkipped = netnsUnavailable();
  if (partitionSkipped !== undefined) log(`no network partition: ${partitionSkipped}`);
  const cluster = await startCluster({
    clientPort: natsClientPort,
    routePort: natsClientPort + 2000,
    monitorPort: natsClientPort + 4000,
    network: partitionSkipped === undefined ? 'netns' : 'loopback',
  });
  // bin/* started through the test harness default to NATS_URL: ours, never another cluster.
  process.env.NATS_URL = cluster.url;
  const fleet = new Fleet(cluster.url, settings.ports.appPort, settings.processorArgs);
  let nc: Awaited<ReturnType<typeof connectNats>> | undefined;
  try {
    await fleet.startServices();
    for (let i = 0; i < PROCESSORS; i++) await fleet.addProcessor();
    nc = await connectNats({ servers: cluster.urls, name: 'chaos' });
    const client = await DurableClient.connect({ nc });
    const sequences = buildWorkload(settings, runId);
    const items = sequences.flat();
    log(`cluster, services and ${PROCESSORS} processors up; submitting over ${settings.submitOverMs / 1000} s`);

    const startedAt = Date.now();
    const resolving = new AbortController();
    const awakeables = resolveAwakeables(items, { client, fleet, signal: resolving.signal });
    const faults = runFaults(settings.faults, { fleet, cluster, nc, startedAt, log, ...(partitionSkipped === undefined ? {} : { partitionSkipped }) });
    const malformed = sendMalformed({ nc, client, fleet, everyMs: settings.faults.malformedEveryMs, until: startedAt + settings.faults.faultsUntilMs, runId });
    const submits = await submitAll(sequences, { client, fleet, startedAt });
    log(`submitted: ${submits.accepted.size} acknowledged, ${submits.refused.length} refused, ${submits.retries} retries`);
    const faultCounts = await faults;
    const malformedCounts = await malformed;

    log(`faults over; waiting up to ${settings.drainDeadlineMs / 1000} s for every workflow to end`);
    const ids = items.filter((i) => submits.accepted.has(i.invocationId)).map((i) => i.invocationId);
    let lastLog = 0;
    const states = await waitForEnds(ids, {
      client,
      deadline: Date.now() + settings.drainDeadlineMs,
      onProgress: (ended) => {
        if (Date.now() - lastLog < 5_000 && ended < ids.length) return;
        lastLog = Date.now();
        log(`[${((Date.now() - startedAt) / 1000).toFixed(1)} s] ${ended} of ${ids.length} ended`);
      },
    });
    resolving.abort();
    const awakeablesResolved = await awakeables;
    // The invocations malformed commands started end too (failed), and are not run for good.
    const junk = await waitForEnds(malformedCounts.started, { client, deadline: Date.now() + JUNK_DEADLINE_MS, onProgress: () => undefined });
    malformedCounts.notEnded = [...junk].filter(([, state]) => !state || !isTerminal(state.status)).map(([id, state]) => `${id}: ${state?.status ?? 'no state'}`);

    const journals = await readJournals(nc, `chaos-${runId}-`);
    const keyedCounts = new Map<string, number>();
    for (const key of new Set(items.filter((i) => i.group === 'exclusive').map((i) => i.partitionKey))) {
      const count = (await client.getKeyedState(key))[CHAOS_DONE_KEY];
      keyedCounts.set(key, typeof count === 'number' ? count : 0);
    }
    const findings = check({ items, accepted: submits.accepted, states, journals, serviceLines: fleet.serviceLines(), keyedCounts, startedAt, serviceDown: faultCounts.serviceDown, cut: faultCounts.partition ? [faultCounts.partition.cutAt, faultCounts.partition.healedAt] : undefined });
    const { accepted: _accepted, ...submitCounts } = submits;
    return {
      findings,
      submits: submitCounts,
      faults: faultCounts,
      malformed: malformedCounts,
      awakeablesResolved,
      crashes: [...fleet.crashes],
      durationMs: Date.now() - began,
      logDir,
    };
  } finally {
    await nc?.close().catch(() => undefined);
    await fleet.stopAll(logDir);
    keepNodeLogs(cluster, logDir);
    await cluster.stop();
  }
}

function keepNodeLogs(cluster: NatsCluster, logDir: string): void {
  for (let i = 0; i < CLUSTER_SIZE; i++) {
    try {
      copyFileSync(join(nodeDir(cluster.dataDir, i), 'nats-server.log'), join(logDir, `${nodeName(i)}.log`));
    } catch {
      // no log: the node never started
    }
  }
}
