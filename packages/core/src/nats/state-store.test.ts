import { describe, expect, it } from 'vitest';
import { messageTtl, ttlLeftMs } from './state-store.js';

describe('time to live of a stored state', () => {
  const storedAt = new Date(1_700_000_000_000);
  const after = (ms: number) => storedAt.getTime() + ms;

  it('counts what is left of a Nats-TTL from when the record was stored', () => {
    expect(ttlLeftMs('86400s', storedAt, after(10_000))).toBe(86_390_000);
    expect(ttlLeftMs('1h30m', storedAt, after(0))).toBe(5_400_000);
    expect(ttlLeftMs('1m0.5s', storedAt, after(500))).toBe(60_000);
    expect(ttlLeftMs('250ms', storedAt, after(50))).toBe(200);
  });

  it('reads what messageTtl writes', () => {
    expect(ttlLeftMs(messageTtl(2_500), storedAt, after(0))).toBe(3_000);
  });

  it('leaves at least 1 ms to a record past its time', () => {
    expect(ttlLeftMs('2s', storedAt, after(60_000))).toBe(1);
  });

  it('has none for a record kept until removed, or a header it cannot read', () => {
    for (const ttl of [undefined, '', 'never', '5 s', '5x', '3s!']) expect(ttlLeftMs(ttl, storedAt, after(0)), String(ttl)).toBeUndefined();
  });
});
