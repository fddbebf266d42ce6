/**
 * What `make bench` prints: markdown tables of whatever the run measured (a section that
 * failed is a row saying why, the others are printed all the same), and the one line that
 * programs read, `bench: latency_ratio=… throughput_ratio=… cpu_ms_per_invocation=…`.
 */
import { cpus } from 'node:os';
import { type LatencyFigures, type StepsFigures, type ThroughputFigures, totalWrites } from './engine.js';
import { type IdleCpu, idlePerSecond, netPerInvocation } from './cpu.js';
import type { FloorFigures } from './floor.js';
import type { OperationCosts, RawFigures } from './raw.js';
import type { RetentionFigures } from './retention.js';
import type { ScalingFigures } from './scaling.js';
import { DUE_SPREAD_MS, SLEEPER_KEYS, type SleepersFigures } from './sleepers.js';
import { targetRows } from './targets.js';
import { type Latency, count, markdownTable, ms, ratio, significant } from './stats.js';

/** A section's figures, or why it failed. */
export type Outcome<T> = T | Error;

/** The process groups whose CPU is measured; "processor" is every processor of the cluster. */
export const GROUPS = {
  servers: 'nats-server ×3',
  processor: 'processor',
  hello: 'hello-service',
  client: 'bench client (this process)',
} as const;

/** The NATS connection names of the processors and of the bench's client, as the servers' /connz shows them. */
export const CONNECTIONS = { processor: 'durable-processor', client: 'durable-bench' } as const;

/** hello_workflow on one cluster: one at a time, and with 64 in flight. */
export interface EngineRun {
  idle: IdleCpu;
  latency: Outcome<LatencyFigures>;
  throughput: Outcome<ThroughputFigures>;
}

/** Everything one run measured; a section absent did not run. */
export interface Measured {
  /** The machine and its load before the run. */
  machine: string;
  profiled: boolean;
  /** Raw JetStream on the shipped cluster (sync_interval always). */
  raw?: Outcome<RawFigures>;
  /** The servers' CPU per operation on the shipped cluster, done bare. */
  operations?: Outcome<OperationCosts>;
  grpc?: Outcome<Latency>;
  /** The second cluster's, with the server's default sync_interval. */
  defaultSync: { raw?: Outcome<RawFigures>; engine?: Outcome<EngineRun>; floor?: Outcome<FloorFigures> };
  /** The issue's least work per hello_workflow done by bare workers, on the shipped cluster. */
  floor?: Outcome<FloorFigures>;
  shipped?: EngineRun;
  /** Throughput by processor count (the first count is the shipped run's). */
  scaling?: Outcome<{ processors: number; figures: Outcome<ScalingFigures> }[]>;
  shortSteps?: Outcome<StepsFigures>;
  longSteps?: Outcome<StepsFigures>;
  retention?: Outcome<RetentionFigures>;
  sleepers?: Outcome<SleepersFigures>;
  placement?: Outcome<string>;
  /** Why the run ended before its last section, when it did. */
  stopped?: Error;
}

function value<T>(o: Outcome<T> | undefined): T | undefined {
  return o instanceof Error ? undefined : o;
}

/** An Error's first line: a log tail in its message would break the table. */
function why(err: Error): string {
  return `failed: ${err.message.split('\n')[0]}`;
}

/** The rows of a section, one row saying why when it failed, none when it did not run. */
function section<T>(o: Outcome<T> | undefined, label: string, rows: (v: T) => string[][], width = 3): string[][] {
  if (o === undefined) return [];
  if (o instanceof Error) return [[label, why(o), ...Array<string>(width - 2).fill('')]];
  return rows(o);
}

/** A group's CPU ms per invocation over a throughput run, idle taken out; `all` sums the groups. */
function cpuPerInvocation(run: { idle: IdleCpu; throughput: ThroughputFigures }, group: string | 'all'): number {
  const groups = group === 'all' ? Object.values(GROUPS) : [group];
  const { cpu, seconds, invocations } = run.throughput;
  return groups.reduce((sum, g) => sum + netPerInvocation(cpu.get(g), run.idle, g, seconds, invocations), 0);
}

/** The run's throughput figures with the idle they are read against, when both exist. */
function loaded(run: EngineRun | undefined): { idle: IdleCpu; throughput: ThroughputFigures } | undefined {
  const throughput = value(run?.throughput);
  return run && throughput ? { idle: run.idle, throughput } : undefined;
}

/** The three figures the last line gives, for one cluster (NaN where not measured). */
function headlineFigures(raw: RawFigures | undefined, run: EngineRun | undefined): { latencyRatio: number; throughputRatio: number; cpuMs: number } {
  const lat = value(run?.latency);
  const tput = loaded(run);
  return {
    latencyRatio: (lat?.latency.p50 ?? Number.NaN) / (raw?.publish.p50 ?? Number.NaN),
    throughputRatio: (tput?.throughput.perSecond ?? Number.NaN) / (raw?.pipelinedRate ?? Number.NaN),
    cpuMs: tput ? cpuPerInvocation(tput, 'all') : Number.NaN,
  };
}

/** The last line of stdout: the shipped cluster's ratios and CPU per invocation. */
export function headline(m: Measured): string {
  const h = headlineFigures(value(m.raw), m.shipped);
  return `bench: latency_ratio=${significant(h.latencyRatio)} throughput_ratio=${significant(h.throughputRatio)} cpu_ms_per_invocation=${significant(h.cpuMs)}`;
}

/** True when some section failed. */
export function anyFailed(m: Measured): boolean {
  const scaling = value(m.scaling) ?? [];
  return [
    m.stopped,
    m.raw,
    m.grpc,
    m.defaultSync.raw,
    m.defaultSync.engine,
    m.defaultSync.floor,
    m.floor,
    value(m.defaultSync.engine)?.latency,
    value(m.defaultSync.engine)?.throughput,
    m.shipped?.latency,
    m.shipped?.throughput,
    m.scaling,
    ...scaling.map((s) => s.figures),
    m.shortSteps,
    m.longSteps,
    m.retention,
    m.sleepers,
    m.placement,
  ].some((o) => o instanceof Error);
}

/** The tables, as printed on stdout. */
export function report(m: Measured): string {
  const lat = value(m.shipped?.latency);
  const tput = value(m.shipped?.throughput);
  const out = [
    '',
    ...(m.profiled ? ['BENCH_PROFILE=1: the processor ran from source under the CPU profiler; these figures are slower than a normal run.', ''] : []),
    m.machine,
    '',
    ...(m.stopped ? [`The run stopped early, ${why(m.stopped)}; what it measured before:`, ''] : []),
    markdownTable(['measure', 'figure', 'check'], mainRows(m)),
    '',
    "The performance issue's targets, on the shipped cluster (sync_interval always), one processor unless said:",
    '',
    markdownTable(['target', 'figure', 'verdict'], targets(m)),
    '',
    'Both sync policies, each cluster read against its own raw figures:',
    '',
    markdownTable(['measure', 'sync_interval always (shipped)', 'sync_interval default (2 min)', 'always / default'], syncRows(m)),
    '',
  ];
  if (m.floor !== undefined || m.defaultSync.floor !== undefined) {
    out.push(
      "The floor: each command's publish and delivery, one SayHello call and one durable write of its outcome (the performance issue's least work per hello_workflow), done by bare workers in processes of their own with the engine's NATS and gRPC clients and nothing of the engine; each cluster against its own raw figures:",
      '',
      markdownTable(['measure', 'sync_interval always (shipped)', 'sync_interval default (2 min)'], floorRows(m)),
      '',
    );
  }
  if (m.scaling !== undefined) {
    out.push(
      `hello_workflow with ${tput?.inFlight ?? 64} in flight by processor count (separate processes on the shipped cluster; CPU per invocation with idle taken out):`,
      '',
      markdownTable(
        ['processors', 'completed /s', 'invoke-to-result p50 / p99 ms', 'CPU ms per invocation: all / processors / servers', 'partitions per processor', "processors' CPU split"],
        scalingRows(m),
      ),
      '',
    );
  }
  if (lat) {
    const b = lat.breakdown;
    const phaseList = [
      ['client publishes the command, until its ack', b.submit],
      ['command delivered to the processor (no state read: the client made its ID)', b.pickup],
      ['the gRPC call (no state written before it on a first delivery)', b.createAndCall],
      ['the final state built (the call\'s outcome goes in it, not appended)', b.append],
      ['final state write (KV), announcement, client receives it', b.finish],
    ] as const;
    out.push(
      `Where one hello_workflow's time goes (${b.count} one-at-a-time runs; from the ms timestamps in the state's first and last revision and the journal):`,
      '',
      markdownTable(['phase', 'median ms', 'mean ms'], [
        ...phaseList.map(([what, p]) => [what, ms(p.median), ms(p.mean)]),
        ['sum', ms(phaseList.reduce((a, [, p]) => a + p.median, 0)), ms(phaseList.reduce((a, [, p]) => a + p.mean, 0))],
      ]),
      '',
    );
  }
  if (m.shipped && (lat || tput)) out.push(...cpuTable(m.shipped, lat, tput), ...messagesTable(lat, tput));
  if (m.placement !== undefined) out.push(m.placement instanceof Error ? `Placement: ${why(m.placement)}` : m.placement, '');
  return `${out.join('\n')}\n`;
}

function mainRows(m: Measured): string[][] {
  const tput = value(m.shipped?.throughput);
  const raw = value(m.raw);
  const long = value(m.longSteps);
  const short = value(m.shortSteps);
  return [
    ...section(m.raw, 'raw JetStream', (r) => [
      ...rawRows(r, 'sync_interval always, as shipped and as every row below'),
      [`raw: R3 fenced append, \`expect: { lastSubjectSequence }\` (${count(r.options.sequential)})`, `p50 ${ms(r.fenced.p50)} ms, p99 ${ms(r.fenced.p99)} ms`, ''],
    ]),
    ...section(m.operations, "raw: the servers' CPU per operation", (o) => [
      [
        `raw: the servers' CPU per operation, ${o.options.inFlight} in flight (${count(o.options.count)} of each, idle taken out)`,
        `publish ${ms(o.publish)} ms; publish fenced on an empty subject (a create) ${ms(o.create)} ms; publish to a work queue, delivery to a consumer waiting for it, acknowledgement: ${o.queued
          .map((q) => `${ms(q.ms)} ms with ${q.consumers} ${q.consumers === 1 ? 'consumer' : 'consumers sharing the subjects'}`)
          .join(', ')}; the same through a stream that keeps its messages (limits retention, as the engine's command stream), each consumer's acknowledged ones purged once a second: ${o.queuedOnLimits
          .map((q) => `${ms(q.ms)} ms with ${q.consumers} ${q.consumers === 1 ? 'consumer' : 'consumers'}`)
          .join(', ')}`,
        '',
      ],
    ]),
    ...section(m.grpc, 'raw: HelloService.SayHello gRPC call', (g) => [[`raw: HelloService.SayHello gRPC call (${g.count})`, `p50 ${ms(g.p50)} ms, p99 ${ms(g.p99)} ms`, '']]),
    ...section(m.shipped?.latency, 'hello_workflow invoke-to-result, one at a time', (l) => [
      [`hello_workflow invoke-to-result, one at a time (${l.latency.count} after ${count(l.warmupInFlight.n)} at ${l.warmupInFlight.inFlight} in flight and ${l.warmup} one at a time: a warm processor)`, `p50 ${ms(l.latency.p50)} ms, p99 ${ms(l.latency.p99)} ms`, ''],
    ]),
    ...section(m.shipped?.throughput, 'hello_workflow completed, 64 in flight', (t) => [
      [
        `hello_workflow completed, ${t.inFlight} in flight (${count(t.invocations)}, after ${count(t.warmup)} unmeasured)`,
        `${count(t.perSecond)} /s (invoke-to-result p50 ${ms(t.latency.p50)} ms, p99 ${ms(t.latency.p99)} ms)`,
        '',
      ],
      [
        'durable writes per hello_workflow invocation (COMMANDS + state + JOURNAL + index)',
        `${ratio(totalWrites(t.writes))} (${ratio(t.writes.commands)} + ${ratio(t.writes.state)} + ${ratio(t.writes.journal)} + ${ratio(t.writes.index)})`,
        '',
      ],
    ]),
    ...section(m.shortSteps, 'custom_workflow, 11 steps', (s) => [
      [
        `custom_workflow, ${s.steps} steps (${s.names} SayHello + NOW; median of ${s.runs})`,
        `${ms(s.msPerStep)} ms/step (invoke-to-result ${ms(s.endToEndMs)} ms; ${totalWrites(s.writes)} writes)`,
        '',
      ],
    ]),
    ...section(m.longSteps, 'custom_workflow, 1,001 steps', (l) => [
      [
        `durable writes per step (JOURNAL messages / steps, custom_workflow ${count(l.names)} names)`,
        `${ratio(l.writes.journal / l.steps)} (${count(l.writes.journal)} / ${count(l.steps)})`,
        '',
      ],
      [
        `custom_workflow, ${count(l.steps)} steps (${count(l.names)} SayHello + NOW; median of ${l.runs})`,
        `${ms(l.msPerStep)} ms/step (invoke-to-result ${count(l.endToEndMs)} ms; ${count(totalWrites(l.writes))} writes)` +
          (l.firstWindow !== undefined && l.lastWindow !== undefined ? `; first ${l.window} steps ${ms(l.firstWindow)}, last ${l.window} ${ms(l.lastWindow)} ms/step` : ''),
        '',
      ],
    ]),
    ...serverFloorRows(value(m.operations), loaded(m.shipped)),
    ...(long && short ? [[`ratio: ms/step at ${count(long.steps)} steps / at ${short.steps} steps`, ratio(long.msPerStep / short.msPerStep), '≈ 1 (no growth)']] : []),
    ...section(m.sleepers, 'sleepers', (s) => sleeperRows(s, m.shipped?.idle)),
    ...section(m.retention, 'stored records with a short retention', retentionRows),
    ...(raw && tput
      ? [
          [
            'ratio: our throughput / (pipelined publish rate / writes per invocation)',
            `${ratio((tput.perSecond * totalWrites(tput.writes)) / raw.pipelinedRate)} (write-bound ceiling ${count(raw.pipelinedRate / totalWrites(tput.writes))} /s)`,
            '',
          ],
        ]
      : []),
  ];
}

function targets(m: Measured): string[][] {
  const raw = value(m.raw);
  const lat = value(m.shipped?.latency);
  const tput = loaded(m.shipped);
  const naps = value(m.sleepers);
  const scaling = value(m.scaling) ?? [];
  const perSecondOf = (processors: number) => {
    const s = scaling.find((c) => c.processors === processors);
    return value(s?.figures)?.throughput.perSecond ?? Number.NaN;
  };
  return targetRows({
    rawPublishP50: raw?.publish.p50 ?? Number.NaN,
    rawPipelinedRate: raw?.pipelinedRate ?? Number.NaN,
    grpcP50: value(m.grpc)?.p50 ?? Number.NaN,
    latencyP50: lat?.latency.p50 ?? Number.NaN,
    latencyP99: lat?.latency.p99 ?? Number.NaN,
    perSecond: tput?.throughput.perSecond ?? Number.NaN,
    cpuAll: tput ? cpuPerInvocation(tput, 'all') : Number.NaN,
    cpuProcessor: tput ? cpuPerInvocation(tput, GROUPS.processor) : Number.NaN,
    msPerStep: value(m.longSteps)?.msPerStep ?? Number.NaN,
    sleepers: naps ? { submitted: naps.count, woken: naps.completed, p99: naps.lateness.p99 } : { submitted: Number.NaN, woken: Number.NaN, p99: Number.NaN },
    byProcessors: { one: perSecondOf(1), four: perSecondOf(4) },
  });
}

/** Both clusters side by side: raw figures, ours, and the ratios between them. */
function syncRows(m: Measured): string[][] {
  const shippedRaw = value(m.raw);
  const defaultRaw = value(m.defaultSync.raw);
  const defaultRun = value(m.defaultSync.engine);
  const cell = <T>(o: Outcome<T> | undefined, show: (v: T) => string) => (o === undefined ? 'not run' : o instanceof Error ? why(o) : show(o));
  const both = <T>(shipped: Outcome<T> | undefined, other: Outcome<T> | undefined, show: (v: T) => string, between: (a: T, b: T) => string) => {
    const a = value(shipped);
    const b = value(other);
    return [cell(shipped, show), cell(other, show), a !== undefined && b !== undefined ? between(a, b) : ''];
  };
  const shippedFigures = headlineFigures(shippedRaw, m.shipped);
  const defaultFigures = headlineFigures(defaultRaw, defaultRun);
  const defaultEngine = m.defaultSync.engine instanceof Error ? m.defaultSync.engine : defaultRun?.latency;
  const defaultTput = m.defaultSync.engine instanceof Error ? m.defaultSync.engine : defaultRun?.throughput;
  const n = (value(m.shipped?.throughput) ?? value(defaultRun?.throughput))?.invocations;
  return [
    [
      'raw: R3 publish, awaiting each ack',
      ...both(
        m.raw,
        m.defaultSync.raw,
        (r) => `p50 ${ms(r.publish.p50)} ms, p99 ${ms(r.publish.p99)} ms`,
        (a, b) => `p50 ${ratio(a.publish.p50 / b.publish.p50)}, p99 ${ratio(a.publish.p99 / b.publish.p99)}`,
      ),
    ],
    ['raw: R3 publish, 256 in flight', ...both(m.raw, m.defaultSync.raw, (r) => `${count(r.pipelinedRate)} msgs/s`, (a, b) => ratio(a.pipelinedRate / b.pipelinedRate))],
    [
      'hello_workflow invoke-to-result, one at a time',
      ...both(
        m.shipped?.latency,
        defaultEngine,
        (l) => `p50 ${ms(l.latency.p50)} ms, p99 ${ms(l.latency.p99)} ms`,
        (a, b) => `p50 ${ratio(a.latency.p50 / b.latency.p50)}, p99 ${ratio(a.latency.p99 / b.latency.p99)}`,
      ),
    ],
    [
      `hello_workflow completed, 64 in flight${n !== undefined ? ` (${count(n)})` : ''}`,
      ...both(m.shipped?.throughput, defaultTput, (t) => `${count(t.perSecond)} /s`, (a, b) => ratio(a.perSecond / b.perSecond)),
    ],
    [
      'latency_ratio: our p50 / raw publish p50',
      significant(shippedFigures.latencyRatio, 3, 'n/a'),
      significant(defaultFigures.latencyRatio, 3, 'n/a'),
      '',
    ],
    [
      'throughput_ratio: completed /s / raw pipelined publish rate',
      significant(shippedFigures.throughputRatio, 3, 'n/a'),
      significant(defaultFigures.throughputRatio, 3, 'n/a'),
      '',
    ],
    ['CPU ms per invocation, all processes, 64 in flight', ms(shippedFigures.cpuMs), ms(defaultFigures.cpuMs), ratio(shippedFigures.cpuMs / defaultFigures.cpuMs)],
  ];
}

/** The floor on each cluster, and ours against it. */
function floorRows(m: Measured): string[][] {
  const clusters = [
    { floor: m.floor, raw: value(m.raw), run: m.shipped },
    { floor: m.defaultSync.floor, raw: value(m.defaultSync.raw), run: value(m.defaultSync.engine) },
  ];
  const row = (label: string, show: (f: FloorFigures, c: (typeof clusters)[number]) => string) => [
    label,
    ...clusters.map((c) => (c.floor === undefined ? 'not run' : c.floor instanceof Error ? why(c.floor) : show(c.floor, c))),
  ];
  const one = (f: FloorFigures) => f.throughput[0];
  const ours = (c: (typeof clusters)[number]) => ({ lat: value(c.run?.latency), tput: loaded(c.run) });
  const workerCounts = [...new Set(clusters.flatMap((c) => value(c.floor)?.throughput.slice(1).map((t) => t.workers) ?? []))];
  return [
    row('floor: one at a time, p50 (× raw publish p50)', (f, c) => `${ms(f.latency.p50)} ms, p99 ${ms(f.latency.p99)} ms (${ratio(f.latency.p50 / (c.raw?.publish.p50 ?? Number.NaN))} ×)`),
    row('ours / floor, one at a time, p50', (f, c) => ratio((ours(c).lat?.latency.p50 ?? Number.NaN) / f.latency.p50)),
    row('floor: completed /s, 64 in flight, one worker (× raw pipelined rate)', (f, c) => `${count(one(f)?.perSecond ?? Number.NaN)} /s (${significant((one(f)?.perSecond ?? Number.NaN) / (c.raw?.pipelinedRate ?? Number.NaN), 3, 'n/a')} ×)`),
    row('ours / floor, completed /s', (f, c) => ratio((ours(c).tput?.throughput.perSecond ?? Number.NaN) / (one(f)?.perSecond ?? Number.NaN))),
    row('floor: CPU ms per invocation, 64 in flight: all (worker / servers / HelloService / client)', (f) => {
      const t = one(f);
      return t ? `${ms(t.all)} (${[t.cpu.workers, t.cpu.servers, t.cpu.hello, t.cpu.client].map(ms).join(' / ')})` : 'n/a';
    }),
    row('ours / floor, CPU per invocation: all, processor / worker', (f, c) => {
      const t = one(f);
      const tput = ours(c).tput;
      return t && tput ? `${ratio(cpuPerInvocation(tput, 'all') / t.all)}, ${ratio(cpuPerInvocation(tput, GROUPS.processor) / t.cpu.workers)}` : 'n/a';
    }),
    ...workerCounts.map((workers) =>
      row(`floor: ${workers} workers / 1, completed /s (CPU ms per invocation, all)`, (f) => {
        const t = f.throughput.find((x) => x.workers === workers);
        return t ? `${ratio(t.perSecond / (one(f)?.perSecond ?? Number.NaN))} (${count(t.perSecond)} /s; ${ms(t.all)} ms)` : 'not run';
      }),
    ),
  ];
}

function scalingRows(m: Measured): string[][] {
  const width = 6;
  return section(
    m.scaling,
    'scaling',
    (counts) => {
      const rows = counts.map(({ processors, figures }) =>
        figures instanceof Error
          ? [String(processors), why(figures), '', '', '', '']
          : [
              String(processors),
              `${count(figures.throughput.perSecond)} (${count(figures.throughput.invocations)} after ${count(figures.throughput.warmup)})`,
              `${ms(figures.throughput.latency.p50)} / ${ms(figures.throughput.latency.p99)}`,
              [cpuPerInvocation(figures, 'all'), cpuPerInvocation(figures, GROUPS.processor), cpuPerInvocation(figures, GROUPS.servers)].map(ms).join(' / '),
              figures.partitions.join(' / ') + (figures.sharedBy < figures.owning ? ` (only ${figures.sharedBy} of ${figures.owning} ran any before the run)` : ''),
              split(figures),
            ],
      );
      const rate = (p: number) => value(counts.find((c) => c.processors === p)?.figures)?.throughput.perSecond ?? Number.NaN;
      return [...rows, ['4 processors / 1', ratio(rate(4) / rate(1)), '', '', '', '']];
    },
    width,
  );
}

/** Each processor's share of the processors' CPU over the run. */
function split(f: ScalingFigures): string {
  if (f.processors < 2) return '';
  const used = Array.from({ length: f.processors }, (_, i) => f.throughput.cpu.get(`${GROUPS.processor} ${i + 1}`));
  if (used.some((u) => u === undefined)) return 'n/a';
  const total = used.reduce<number>((a, u) => a + (u as number), 0);
  return used.map((u) => `${Math.round(((u as number) / total) * 100)} %`).join(' / ');
}

function cpuTable(run: EngineRun, lat: LatencyFigures | undefined, tput: ThroughputFigures | undefined): string[] {
  const figures = Object.values(GROUPS).map((name) => ({
    name,
    idlePerSecond: idlePerSecond(run.idle, name),
    one: lat ? netPerInvocation(lat.cpu.get(name), run.idle, name, lat.seconds, lat.latency.count) : Number.NaN,
    many: tput ? netPerInvocation(tput.cpu.get(name), run.idle, name, tput.seconds, tput.invocations) : Number.NaN,
    cores: tput ? (tput.cpu.get(name) ?? Number.NaN) / (tput.seconds * 1000) : Number.NaN,
  }));
  const total = (pick: (f: (typeof figures)[number]) => number) => figures.reduce((a, f) => a + pick(f), 0);
  const inFlight = tput?.inFlight ?? 64;
  return [
    'CPU per hello_workflow invocation (user + system from /proc, idle CPU taken out):',
    '',
    markdownTable(
      ['process', 'idle, ms per s', 'ms per invocation, one at a time', `ms per invocation, ${inFlight} in flight`, `cores busy, ${inFlight} in flight`],
      [
        ...figures.map((f) => [f.name, ms(f.idlePerSecond), ms(f.one), ms(f.many), ratio(f.cores)]),
        ['all', ms(total((f) => f.idlePerSecond)), ms(total((f) => f.one)), ms(total((f) => f.many)), `${ratio(total((f) => f.cores))} of ${cpus().length}`],
      ],
    ),
    '',
  ];
}

function messagesTable(lat: LatencyFigures | undefined, tput: ThroughputFigures | undefined): string[] {
  const rows = Object.entries(CONNECTIONS).map(([who, name]) => {
    const show = (m: { sent: number; received: number } | undefined) => (m === undefined ? 'n/a' : `${ratio(m.sent, 1)} sent, ${ratio(m.received, 1)} received`);
    return [who === 'client' ? 'bench client (DurableClient)' : 'processor', show(lat?.messages.get(name)), show(tput?.messages.get(name))];
  });
  return [
    "NATS messages per hello_workflow invocation (the connections' counts in the servers' /connz):",
    '',
    markdownTable(['connection', 'one at a time', `${tput?.inFlight ?? 64} in flight`], rows),
    '',
  ];
}

function verdict(met: boolean): string {
  return met ? 'met' : 'MISSED';
}

/**
 * The servers' CPU per hello_workflow invocation against the same operations done bare: its
 * command's path through a stream of limits retention trimmed once a second (shared by as
 * many consumers as the engine has partitions), its state's create and its index entry's
 * publish.
 */
function serverFloorRows(operations: OperationCosts | undefined, run: { idle: IdleCpu; throughput: ThroughputFigures } | undefined): string[][] {
  if (!operations || !run) return [];
  const servers = cpuPerInvocation(run, GROUPS.servers);
  return operations.queuedOnLimits.map(({ consumers, ms: queued }) => {
    const bare = queued + operations.create + operations.publish;
    return [
      `ratio: the servers' CPU per hello_workflow invocation, ${run.throughput.inFlight} in flight / the same operations done bare (a command through the stream with ${consumers} ${consumers === 1 ? 'consumer' : 'consumers'}, a create, a publish)`,
      `${ratio(servers / bare)} (${ms(servers)} ms / ${ms(bare)} ms)`,
      '',
    ];
  });
}

/** The raw rows of one cluster: a publish awaiting each ack, and pipelined publishes. */
function rawRows(figures: RawFigures, policy: string): string[][] {
  return [
    [
      `raw: R3 publish, awaiting each ack (${count(figures.options.sequential)}); ${policy}`,
      `p50 ${ms(figures.publish.p50)} ms, p99 ${ms(figures.publish.p99)} ms (servers' CPU ${ms(figures.serverCpuPerPublish)} ms per publish)`,
      '',
    ],
    [
      `raw: R3 publish, ${figures.options.inFlight} in flight (${count(figures.options.pipelinedCount)}); ${policy}`,
      `${count(figures.pipelinedRate)} msgs/s (servers' CPU ${ms(figures.serverCpuPerPipelined)} ms per publish)`,
      '',
    ],
  ];
}

/** The sleepers' rows: CPU while they wait, how late their timers fired and they went on. */
function sleeperRows(naps: SleepersFigures, idle: IdleCpu | undefined): string[][] {
  const asleep = Number.isNaN(naps.allAsleepSeconds)
    ? `not all asleep before the first could be due (${count(naps.asleepAtOnce)} were)`
    : `all asleep ${ratio(naps.allAsleepSeconds, 1)} s after the first submit`;
  const ended = `${count(naps.completed)} of ${count(naps.count)} completed` + (naps.failed > 0 ? `, ${count(naps.failed)} failed (${naps.firstFailure})` : '');
  return [
    [
      `${count(naps.asleepAtOnce)} invocations asleep at once (of ${count(naps.count)}; due ${naps.sleepMs / 1000} to ${(naps.sleepMs + DUE_SPREAD_MS) / 1000} s after the first submit, evenly, on ${count(SLEEPER_KEYS)} keys; sized from the throughput above): CPU while they wait, ms per s`,
      [GROUPS.processor, GROUPS.servers]
        .map((group) => `${group} ${ms(naps.cpuPerSecond.get(group) ?? Number.NaN)} (idle ${idle ? ms(idlePerSecond(idle, group)) : 'n/a'})`)
        .join(', ') + `; ${asleep}`,
      'as idle: nothing held in memory',
    ],
    // Timers are scheduled messages: the server stores a fired one itself, with no publish a
    // subscriber could see, so only the lateness of the workflows going on is measured.
    ...(naps.firing.count > 0
      ? [
          [
            `${count(naps.count)} sleepers: how late each timer fired (its resume command stored − due time)`,
            `p50 ${count(naps.firing.p50)} ms, p99 ${count(naps.firing.p99)} ms, max ${count(naps.firingMaxMs)} ms (${count(naps.firing.count)} seen)`,
            `< 1,000 ms: ${verdict(naps.firingMaxMs < 1_000)}`,
          ],
        ]
      : []),
    [
      `${count(naps.count)} sleepers: how late each went on (journaled now after the sleep − due time)`,
      `p50 ${count(naps.lateness.p50)} ms, p99 ${count(naps.lateness.p99)} ms, max ${count(naps.latenessMaxMs)} ms; ${ended}`,
      'the timers fire on time; a burst of wake-ups is then run at the throughput above',
    ],
  ];
}

/** Stored records at the end of a run and once its retention has passed, against the baseline before it. */
function retentionRows(k: RetentionFigures): string[][] {
  const sum = (stored: RetentionFigures['peak']) => ({
    messages: stored.reduce((a, s) => a + s.messages, 0),
    bytes: stored.reduce((a, s) => a + s.bytes, 0),
    subjects: stored.reduce((a, s) => a + s.subjects, 0),
  });
  const show = (t: ReturnType<typeof sum>) => `${count(t.messages)} messages, ${count(Math.round(t.bytes / 1024))} KiB, ${count(t.subjects)} subjects`;
  const back = Number.isNaN(k.backAfterMs) ? `not back within the wait: ${show(sum(k.after))}` : `back to baseline ${ratio(k.backAfterMs / 1000, 1)} s after the last ended`;
  return [
    [
      `stored records, ${count(k.invocations)} hello_workflow with --retention ${k.retentionMs / 1000}s (COMMANDS, JOURNAL, state, index, awakeables)`,
      `baseline ${show(sum(k.baseline))}; at the end ${show(sum(k.peak))}; ${back}`,
      `baseline once the retention has passed: ${verdict(!Number.isNaN(k.backAfterMs))}`,
    ],
    [
      `CPU per invocation, its removal included (the same run, all processes: the run, then until the streams were back)`,
      `${ratio((k.cpuMs.run + k.cpuMs.removal) / k.invocations)} ms: ${ratio(k.cpuMs.run / k.invocations)} ms over the run, ${ratio(k.cpuMs.removal / k.invocations)} ms after it`,
      '',
    ],
  ];
}
