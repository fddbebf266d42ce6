/**
 * A window that gathers what comes within a few ms of each other, so that it goes out in
 * one write (or one replicated, synced step on the server) rather than one each.
 */
import { setTimeout as wait } from 'node:timers/promises';

export class BatchWindow {
  #open: Promise<void> | undefined;

  /** @param ms how long a window stays open after the call that opens it */
  constructor(private readonly ms: number) {}

  /** Resolves at the end of the window open now, or of one this call opens. Keeps no process alive. */
  end(): Promise<void> {
    this.#open ??= wait(this.ms, undefined, { ref: false }).then(() => {
      this.#open = undefined;
    });
    return this.#open;
  }
}
