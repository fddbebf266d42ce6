/**
 * The performance issue's targets, each read against figures of the same run: ratios to
 * the raw JetStream and gRPC figures rather than absolute times, since the machine's speed
 * varies from run to run.
 */
import { count, ms, ratio, significant } from './stats.js';

/** The figures the targets are read from (NaN where a section failed). */
export interface TargetFigures {
  rawPublishP50: number;
  rawPipelinedRate: number;
  grpcP50: number;
  latencyP50: number;
  latencyP99: number;
  /** hello_workflow completed per second, 64 in flight, one processor. */
  perSecond: number;
  /** CPU ms per invocation, 64 in flight, idle taken out. */
  cpuAll: number;
  cpuProcessor: number;
  /** The 1,000-step custom_workflow's ms per step. */
  msPerStep: number;
  sleepers: { submitted: number; woken: number; p99: number };
  /** hello_workflow completed per second, 64 in flight, by processor count. */
  byProcessors: { one: number; four: number };
}

const TARGETS = {
  latencyTimesPublish: { bound: 6, aim: 5 },
  p99TimesP50: 4,
  throughputShareOfPipelined: { bound: 0.1, aim: 0.15 },
  cpuAllMs: 1.5,
  cpuProcessorMs: 0.4,
  stepTimesGrpcAndPublish: 1.3,
  sleeperP99Ms: 1_000,
};

/** 'met' or 'MISSED'; 'n/a' when the figure was not measured. */
function atMost(value: number, bound: number): string {
  if (!Number.isFinite(value) || !Number.isFinite(bound)) return 'n/a';
  return value <= bound ? 'met' : 'MISSED';
}

function atLeast(value: number, bound: number): string {
  if (!Number.isFinite(value) || !Number.isFinite(bound)) return 'n/a';
  return value >= bound ? 'met' : 'MISSED';
}

/** The targets' rows: target, figure, verdict. */
export function targetRows(f: TargetFigures): string[][] {
  const t = TARGETS;
  const latencyTimes = f.latencyP50 / f.rawPublishP50;
  const p99Times = f.latencyP99 / f.latencyP50;
  const share = f.perSecond / f.rawPipelinedRate;
  const stepBound = t.stepTimesGrpcAndPublish * (f.grpcP50 + f.rawPublishP50);
  const { submitted, woken, p99 } = f.sleepers;
  return [
    [
      `hello_workflow latency p50 ≤ ${t.latencyTimesPublish.bound} × raw R3 publish p50 (aim ${t.latencyTimesPublish.aim} ×)`,
      `${ratio(latencyTimes, 1)} × (p50 ${ms(f.latencyP50)} ms / ${ms(f.rawPublishP50)} ms)`,
      `${atMost(latencyTimes, t.latencyTimesPublish.bound)} (aim: ${atMost(latencyTimes, t.latencyTimesPublish.aim)})`,
    ],
    [
      `hello_workflow latency p99 ≤ ${t.p99TimesP50} × our p50`,
      `${ratio(p99Times, 1)} × (p99 ${ms(f.latencyP99)} ms / p50 ${ms(f.latencyP50)} ms)`,
      atMost(p99Times, t.p99TimesP50),
    ],
    [
      `hello_workflow throughput, 64 in flight ≥ ${t.throughputShareOfPipelined.bound.toFixed(2)} × raw pipelined publish rate (aim ${t.throughputShareOfPipelined.aim.toFixed(2)} ×)`,
      `${significant(share, 3, 'n/a')} × (${count(f.perSecond)} /s / ${count(f.rawPipelinedRate)} msgs/s)`,
      `${atLeast(share, t.throughputShareOfPipelined.bound)} (aim: ${atLeast(share, t.throughputShareOfPipelined.aim)})`,
    ],
    [`CPU per invocation, all processes, 64 in flight ≤ ${t.cpuAllMs} ms`, `${ms(f.cpuAll)} ms`, atMost(f.cpuAll, t.cpuAllMs)],
    [`CPU per invocation, the processor, 64 in flight ≤ ${t.cpuProcessorMs} ms`, `${ms(f.cpuProcessor)} ms`, atMost(f.cpuProcessor, t.cpuProcessorMs)],
    [
      `1,000-step workflow ms/step ≤ ${t.stepTimesGrpcAndPublish} × (raw gRPC p50 + raw publish p50)`,
      `${ms(f.msPerStep)} ms/step; bound ${t.stepTimesGrpcAndPublish} × (${ms(f.grpcP50)} + ${ms(f.rawPublishP50)}) = ${ms(stepBound)} ms`,
      atMost(f.msPerStep, stepBound),
    ],
    [
      `${Number.isFinite(submitted) ? `${count(submitted)} ` : ''}sleepers woken p99 ≤ ${t.sleeperP99Ms / 1000} s after due`,
      `p99 ${count(p99)} ms (${count(woken)} of ${count(submitted)} woke)`,
      // One that never woke is later than any bound.
      woken < submitted ? 'MISSED' : atMost(p99, t.sleeperP99Ms),
    ],
    [
      "throughput of 4 processors ≥ 1 processor's (64 in flight)",
      `${count(f.byProcessors.four)} /s vs ${count(f.byProcessors.one)} /s (${ratio(f.byProcessors.four / f.byProcessors.one)})`,
      atLeast(f.byProcessors.four, f.byProcessors.one),
    ],
  ];
}
