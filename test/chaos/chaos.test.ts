/**
 * The short chaos run (`CHAOS_SHORT=1`, the same code as `make chaos`): about 150 workflows
 * through three processors on a cluster of its own while processors are killed, stopped,
 * added and removed, a stream leader's node and HelloService go down, a stream leader's node
 * is cut off for 10 s (as root, where the nodes run in network namespaces), and malformed
 * input arrives. Nothing may be lost, fail unexpectedly, be journaled twice, run out of its
 * key's order or beside another invocation of its exclusive key, and no write acknowledged
 * on the cut-off side may be missing after the heal.
 */
import { describe, expect, it } from 'vitest';
import { formatReport, verdict } from '../../scripts/chaos/report.js';
import { runChaos } from '../../scripts/chaos/run.js';
import { settingsFromEnv } from '../../scripts/chaos/settings.js';
import { netnsUnavailable } from '../support/netns.js';

/** Clear of the suite's own cluster (DURABLE_TEST_NATS_PORT) and of `make chaos`'s ports. */
const NATS_PORT = Number.parseInt(process.env.DURABLE_TEST_NATS_PORT || '14222', 10) + 300;

describe('make chaos, short', () => {
  it('loses nothing and keeps journal, per-key order and exclusivity intact under kills, stalls, node loss and bad input', async () => {
    const progress: string[] = [];
    const settings = settingsFromEnv(
      { ...process.env, CHAOS_SHORT: '1', CHAOS_NATS_PORT: String(NATS_PORT), CHAOS_APP_PORT: String(NATS_PORT + 10) },
      (line) => progress.push(line),
    );
    const report = await runChaos(settings);
    const table = formatReport(report);
    console.log(table);
    const f = report.findings;
    expect(f.workflows).toBe(settings.workflows);
    expect(
      {
        lost: f.lost,
        refused: report.submits.refused.length,
        failedUnexpected: f.failedUnexpected,
        failedMeant: f.failedMeant,
        journalDuplicates: f.journalDuplicates,
        orderViolations: f.orderViolations,
        exclusiveOverlaps: f.exclusiveOverlaps,
        keyedCountOff: f.keyedCountOff,
      },
      `${table}\n\n${progress.join('\n')}`,
    ).toEqual({
      lost: 0,
      refused: 0,
      failedUnexpected: 0,
      failedMeant: settings.meantToFail,
      journalDuplicates: 0,
      orderViolations: 0,
      exclusiveOverlaps: 0,
      keyedCountOff: 0,
    });
    // The faults happened, each of them.
    expect(report.faults.processorKills).toBeGreaterThan(0);
    expect(report.faults.processorStops).toBe(1);
    expect([report.faults.processorsAdded, report.faults.processorsRemoved]).toEqual([1, 1]);
    expect([report.faults.nodeKills, report.faults.nodeRestarts, report.faults.serviceOutages]).toEqual([1, 1, 1]);
    // The partition, where network namespaces can be made (as root, as CI runs); else skipped, saying why.
    const partition = report.faults.partition;
    const netnsMissing = netnsUnavailable();
    if (netnsMissing === undefined) {
      expect(partition, table).toBeDefined();
      expect(partition?.acked, table).toBeGreaterThan(0);
      expect([partition?.missing, f.cutLost], table).toEqual([0, 0]);
    } else {
      expect(report.faults.partitionSkipped).toBe(netnsMissing);
    }
    expect(verdict(report)).toEqual([]);
  }, 400_000);
});
