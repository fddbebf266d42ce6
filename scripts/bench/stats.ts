/** Small statistics and formatting helpers of `make bench`. */
import { performance } from 'node:perf_hooks';

/** Milliseconds since an arbitrary origin, sub-millisecond resolution. */
export function nowMs(): number {
  return performance.now();
}

/** The nearest-rank percentile `p` (0-100) of some samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

export function mean(samples: readonly number[]): number {
  if (samples.length === 0) return Number.NaN;
  return samples.reduce((a, b) => a + b, 0) / samples.length;
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

/** p50 and p99 of latencies, ms. */
export interface Latency {
  p50: number;
  p99: number;
  count: number;
}

export function latency(samples: readonly number[]): Latency {
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), count: samples.length };
}

/** `0.78` / `12.3` / `1,234`: enough digits to read, not more. */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (value < 10) return value.toFixed(2);
  if (value < 100) return value.toFixed(1);
  return Math.round(value).toLocaleString('en-US');
}

export function count(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a';
}

export function ratio(value: number, digits = 2): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

/** `14.4`, `0.0134`, `1230`: `digits` significant digits; `missing` when not a number (`nan` for lines that programs read). */
export function significant(value: number, digits = 3, missing = 'nan'): string {
  return Number.isFinite(value) ? String(Number(value.toPrecision(digits))) : missing;
}

/** Runs `n` tasks with at most `concurrency` outstanding; returns each task's duration, ms. */
export async function pipelined(n: number, concurrency: number, task: (i: number, worker: number) => Promise<void>): Promise<number[]> {
  const durations: number[] = [];
  let next = 0;
  const worker = async (w: number): Promise<void> => {
    for (let i = next++; i < n; i = next++) {
      const t0 = nowMs();
      await task(i, w);
      durations.push(nowMs() - t0);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, (_, w) => worker(w)));
  return durations;
}

/** A markdown table. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}
