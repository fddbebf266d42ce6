/**
 * The chaos run's table, and the verdict: the run fails when anything was lost, failed
 * unexpectedly, recorded twice, run out of order, or run beside another invocation of its
 * exclusive key, or when a write acknowledged on the cut-off side of the partition is
 * missing after the heal.
 */
import type { Findings } from './check.js';
import type { SubmitCounts } from './driver.js';
import type { FaultCounts } from './faults.js';
import type { MalformedCounts } from './malformed.js';

/** Everything a run measured. */
export interface ChaosReport {
  findings: Findings;
  submits: Omit<SubmitCounts, 'accepted'>;
  faults: FaultCounts;
  malformed: MalformedCounts;
  /** Awakeables resolved over the HTTP API. */
  awakeablesResolved: number;
  /** Processes that ended without being asked to. */
  crashes: string[];
  /** The whole run, ms. */
  durationMs: number;
  logDir: string;
}

/** Why the run failed; empty when it passed. */
export function verdict(report: ChaosReport): string[] {
  const f = report.findings;
  const reasons: [boolean, string][] = [
    [f.lost > 0, `${f.lost} lost`],
    [report.submits.refused.length > 0, `${report.submits.refused.length} submissions refused for good`],
    [f.failedUnexpected > 0, `${f.failedUnexpected} failed unexpectedly`],
    [f.journalDuplicates > 0, `${f.journalDuplicates} journal steps recorded twice`],
    [f.orderViolations > 0, `${f.orderViolations} per-key order violations`],
    [f.exclusiveOverlaps > 0, `${f.exclusiveOverlaps} exclusive overlaps`],
    [f.keyedCountOff > 0, `keyed-state count off by ${f.keyedCountOff}`],
    [report.malformed.notEnded.length > 0, `${report.malformed.notEnded.length} invocations of malformed commands never ended`],
    [(report.faults.partition?.missing ?? 0) > 0, `${report.faults.partition?.missing} writes acknowledged on the cut-off side missing after the heal`],
  ];
  return reasons.filter(([bad]) => bad).map(([, why]) => why);
}

/** The table (markdown), then the samples behind any non-zero count. */
export function formatReport(report: ChaosReport): string {
  const f = report.findings;
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const rows: [string, string, string][] = [
    ['workflows', `${f.workflows}`, `${report.submits.retries} submissions retried, ${report.submits.refused.length} refused for good`],
    ['completed', `${f.completed}`, `${report.awakeablesResolved} awakeables resolved over HTTP`],
    ['failed: meant to fail / not', `${f.failedMeant} / ${f.failedUnexpected}`, 'INVALID_ARGUMENT from HelloService, no retries'],
    ['lost (not ended)', `${f.lost}`, ''],
    ['journal steps recorded twice', `${f.journalDuplicates}`, ''],
    ['per-key order violations', `${f.orderViolations}`, `of ${f.orderPairs} consecutive pairs`],
    ['exclusive overlaps', `${f.exclusiveOverlaps}`, `keyed-state count off by ${f.keyedCountOff}`],
    ['service calls repeated', `${f.serviceRepeats}`, `of ${f.serviceCalls} received (at least once, by idempotency key)`],
    ['kills', `${report.faults.processorKills}`, `kill -9 of processors; ${report.faults.processorStops} SIGSTOP, ${report.faults.processorsAdded} added / ${report.faults.processorsRemoved} removed, ${report.faults.serviceOutages} HelloService outage`],
    ['node restarts', `${report.faults.nodeRestarts}`, `${report.faults.nodeKills} kill -9 of a stream leader's node`],
    ['longest stall', s(f.longestStallMs), `from ${s(f.longestStallAtMs)} into the run; HelloService's outage not counted`],
    ['malformed input', `${report.malformed.commands + report.malformed.requests}`, `${report.malformed.commands} commands, ${report.malformed.requests} requests; ${report.malformed.unclear.length} answered unclearly; ${report.malformed.started.length - report.malformed.notEnded.length} of the ${report.malformed.started.length} invocations they started ended`],
    ['HTTP 5xx to good requests', `${report.submits.http5xx}`, ''],
    ['processes that exited by themselves', `${report.crashes.length}`, 'crashed, or could not start'],
    partitionRow(report),
  ];
  const lines = ['| | count | |', '| --- | --- | --- |', ...rows.map((r) => `| ${r.join(' | ')} |`)];
  const details: [string, readonly string[]][] = [
    ['unexpected failures', f.failedSamples],
    ['lost', f.lostSamples],
    ['journal duplicates', f.duplicateSamples],
    ['order violations', f.orderSamples],
    ['unclear answers to malformed input', report.malformed.unclear.slice(0, 5)],
    ['invocations of malformed commands not ended', report.malformed.notEnded.slice(0, 5)],
    ['HTTP 5xx', report.submits.http5xxSamples],
    ['crashes', report.crashes],
    ['faults not done', report.faults.problems],
    ['acknowledged on the cut-off side, missing after the heal', report.faults.partition?.missingSamples ?? []],
  ];
  for (const [what, samples] of details) {
    if (samples.length > 0) lines.push('', `${what} (first ${samples.length}):`, ...samples.map((x) => `  ${x}`));
  }
  lines.push('', `run took ${s(report.durationMs)}; logs in ${report.logDir}`);
  return lines.join('\n');
}

/** The partition's row: acknowledged writes lost, on the cut-off side and through the processors; or why it did not run. */
function partitionRow(report: ChaosReport): [string, string, string] {
  const p = report.faults.partition;
  if (!p) return ['network partition', 'not run', report.faults.partitionSkipped ?? 'see faults not done'];
  const f = report.findings;
  const probe = p.probeLeader === p.node ? '' : ` (its probe stream led by ${p.probeLeader}: could not be moved)`;
  return [
    'network partition: acknowledged writes lost',
    `${p.missing + f.cutLost}`,
    `${p.node} (leader of ${p.stream}) cut off for ${(p.cutMs / 1000).toFixed(1)} s${probe}: a client on its side had ${p.ackedDuringCut} writes acknowledged during the cut, ` +
      `${p.acked} in all, ${p.missing} missing after the heal; ${f.cutSubmits} submissions acknowledged during the cut, ${f.cutLost} lost`,
  ];
}
