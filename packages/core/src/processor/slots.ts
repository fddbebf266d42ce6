/**
 * A counting semaphore for run slots: at most `size` invocations run at once on a
 * processor, whatever the number of partitions it owns.
 */
export class Slots {
  #free: number;
  readonly #waiters: Array<(granted: boolean) => void> = [];
  #closed = false;

  constructor(size: number) {
    this.#free = size;
  }

  /** Resolves true once a slot is taken, false when the semaphore is closed. */
  acquire(): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Gives a slot back, to the longest waiter if any. */
  release(): void {
    const next = this.#waiters.shift();
    if (next) next(true);
    else this.#free++;
  }

  /** Refuses every waiting and future acquire. */
  close(): void {
    this.#closed = true;
    for (const waiter of this.#waiters.splice(0)) waiter(false);
  }
}
