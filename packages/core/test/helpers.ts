/**
 * Shared pieces of the core's integration tests.
 */
import type { ServiceInvoker } from '../src/index.js';

/** True once `check` holds, checking after each turn of the event loop, within 5 s. */
export async function settles(check: () => boolean): Promise<boolean> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return true;
}

/** For workflows that call no service: any call fails. */
export const noServices: ServiceInvoker = {
  call: async () => {
    throw new Error('no services here');
  },
  close: () => undefined,
};
