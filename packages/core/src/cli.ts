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
