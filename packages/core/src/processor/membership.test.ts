import { describe, expect, it } from 'vitest';
import { assignment } from './membership.js';

const members = (n: number) => Array.from({ length: n }, (_, i) => `vm-${1000 + i * 7}-${(i * 7919).toString(16)}`);

function shares(owners: Map<number, string>): number[] {
  const counts = new Map<string, number>();
  for (const member of owners.values()) counts.set(member, (counts.get(member) ?? 0) + 1);
  return [...counts.values()];
}

describe('assignment', () => {
  it('gives every partition to one member, the shares differing by one at most', () => {
    for (const count of [1, 7, 16, 64]) {
      for (let n = 1; n <= 9; n++) {
        const owners = assignment(members(n), count);
        expect([...owners.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: count }, (_, p) => p));
        const given = shares(owners);
        expect(given.length, `${count} partitions, ${n} members`).toBe(Math.min(n, count));
        expect(Math.max(...given) - Math.min(...given), `${count} partitions, ${n} members: ${given.join(', ')}`).toBeLessThanOrEqual(1);
      }
    }
  });

  it('is the same whatever the members order, and with a member listed twice', () => {
    const list = members(5);
    const owners = assignment(list, 16);
    expect(assignment([...list].reverse(), 16)).toEqual(owners);
    expect(assignment([...list, list[2]!], 16)).toEqual(owners);
  });

  it('moves few partitions on a join or a leave', () => {
    for (const count of [16, 64]) {
      for (let n = 2; n <= 8; n++) {
        const before = assignment(members(n), count);
        const after = assignment(members(n + 1), count);
        const moved = [...before].filter(([p, m]) => after.get(p) !== m).length;
        // A share of the newcomer must move; a fresh round-robin would move most of them.
        expect(moved, `${count} partitions, ${n} -> ${n + 1} members`).toBeGreaterThanOrEqual(Math.floor(count / (n + 1)));
        expect(moved, `${count} partitions, ${n} -> ${n + 1} members`).toBeLessThanOrEqual(count / 2);
      }
    }
  });

  it('gives nothing when no member is alive', () => {
    expect(assignment([], 16).size).toBe(0);
  });
});
