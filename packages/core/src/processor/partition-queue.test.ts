import { describe, expect, it } from 'vitest';
import { PartitionQueue } from './partition-queue.js';

describe('partition queue', () => {
  it('starts the first work of a key and holds later ones in order', () => {
    const q = new PartitionQueue<string>();
    expect(q.enqueue('a', 'a1')).toBe(true);
    expect(q.enqueue('a', 'a2')).toBe(false);
    expect(q.enqueue('b', 'b1')).toBe(true);
    expect(q.enqueue('a', 'a3')).toBe(false);
    expect(q.next('a')).toBe('a2');
    expect(q.next('a')).toBe('a3');
    expect(q.next('a')).toBeUndefined();
    expect(q.activeKeys).toBe(1);
    expect(q.enqueue('a', 'a4')).toBe(true);
  });

  it('hands back waiting work when drained', () => {
    const q = new PartitionQueue<number>();
    q.enqueue('k', 1);
    q.enqueue('k', 2);
    q.enqueue('k', 3);
    expect(q.drainWaiting()).toEqual([2, 3]);
    expect(q.next('k')).toBeUndefined();
  });
});
