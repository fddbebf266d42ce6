import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from './errors.js';
import { formatDuration, parseDuration } from './config.js';

describe('durations', () => {
  it('reads milliseconds and numbers with units', () => {
    expect(parseDuration('1500')).toBe(1_500);
    expect(parseDuration('0')).toBe(0);
    expect(parseDuration('7d')).toBe(7 * 86_400_000);
    expect(parseDuration('24h')).toBe(86_400_000);
    expect(parseDuration('90m')).toBe(5_400_000);
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration(' 1.5s ')).toBe(1_500);
  });

  it('refuses anything else, naming the value and where it came from', () => {
    for (const bad of ['', '7 days', '-5', '5w', 'h', '1.5', '7d ago', '1e3']) {
      expect(() => parseDuration(bad, '--dead-letter-retention'), bad).toThrow(InvalidArgumentError);
    }
    expect(() => parseDuration('soon', '--retention')).toThrow('invalid --retention: "soon" is not a duration');
  });

  it('writes what it reads', () => {
    for (const text of ['7d', '1h30m', '250ms', '1d2h3m4s5ms']) expect(formatDuration(parseDuration(text))).toBe(text);
    expect(formatDuration(0)).toBe('0');
  });
});
