/**
 * Keeps commands of one partition key in order: a command starts only once the one before
 * it with the same key has finished. Commands of different keys run side by side.
 */

/** Per-key FIFO queues of work. */
export class PartitionQueue<T> {
  readonly #waiting = new Map<string, T[]>();

  /**
   * Adds work for a key. Returns true when the key was idle and the caller should start
   * the work now; false when it waits behind earlier work of the same key.
   */
  enqueue(key: string, work: T): boolean {
    const queue = this.#waiting.get(key);
    if (queue) {
      queue.push(work);
      return false;
    }
    this.#waiting.set(key, []);
    return true;
  }

  /** Marks the running work of a key done; returns the next work of that key, if any. */
  next(key: string): T | undefined {
    const queue = this.#waiting.get(key);
    const work = queue?.shift();
    if (work === undefined) this.#waiting.delete(key);
    return work;
  }

  /** Takes out every waiting (not running) work item, e.g. to hand it back when stopping. */
  drainWaiting(): T[] {
    const all: T[] = [];
    for (const queue of this.#waiting.values()) all.push(...queue.splice(0));
    return all;
  }

  /** Keys with running work. */
  get activeKeys(): number {
    return this.#waiting.size;
  }
}
