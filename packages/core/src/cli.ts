/**
 * Small pieces the apps share: reading numeric flags with clear errors, and shutting
 * down once on SIGINT or SIGTERM.
 */
import { InvalidArgumentError } from './errors.js';

/**
 * A flag's value as a number within bounds.
 * @throws InvalidArgumentError naming the flag and the value.
 */
export function parseNumberFlag(flag: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) {
    throw new InvalidArgumentError(flag, `${JSON.stringify(value)} is not a number of at least ${min}`);
  }
  return n;
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration flag in ms: `500ms`, `30s`, `90m`, `24h`, `7d`, or a whole number of ms (`0`).
 * @throws InvalidArgumentError naming the flag when the value is not a duration.
 */
export function parseDurationFlag(flag: string, value: string | undefined, fallbackMs: number): number {
  if (value === undefined || value === '') return fallbackMs;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  const ms = match ? Number(match[1]) * (DURATION_UNITS_MS[match[2] ?? 'ms'] ?? 1) : Number.NaN;
  if (!Number.isSafeInteger(Math.round(ms))) {
    throw new InvalidArgumentError(flag, `${JSON.stringify(value)} is not a duration (like 30s, 90m, 24h, 7d, or a number of ms)`);
  }
  return Math.round(ms);
}

/**
 * Runs `shutdown` on the first SIGINT or SIGTERM, then exits with its code; a second
 * signal while it runs exits at once.
 */
export function onShutdown(shutdown: (signal: NodeJS.Signals) => Promise<void>): void {
  let shuttingDown = false;
  const handle = (signal: NodeJS.Signals) => {
    if (shuttingDown) process.exit(130);
    shuttingDown = true;
    shutdown(signal).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', handle);
  process.on('SIGTERM', handle);
}
