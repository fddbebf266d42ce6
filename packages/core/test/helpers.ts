/**
 * Shared pieces of the core's integration tests.
 */
import { inject } from 'vitest';
import {
  connectNats,
  DurableClient,
  Processor,
  silentLogger,
  type AnyWorkflow,
  type ServiceInvoker,
} from '../src/index.js';
import type { NatsConnection } from '@nats-io/transport-node';

/** True once `check` holds, checking after each turn of the event loop, within 5 s. */
export async function settles(check: () => boolean): Promise<boolean> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return true;
}

/** For workflows that call no service: every call fails. */
export const noServices: ServiceInvoker = {
  call: async () => {
    throw new Error('no services here');
  },
  close: () => undefined,
};

/** A processor and a client on the test cluster, each on its own connection, as in separate processes. */
export interface TestEngine {
  processor: Processor;
  client: DurableClient;
  stop(): Promise<void>;
}

/** Starts a processor for the workflows and a client, in their own namespace. */
export async function startTestEngine(namespace: string, workflows: AnyWorkflow[]): Promise<TestEngine> {
  const servers = inject('natsUrl').split(',');
  const clientNc = await connectNats({ servers, maxAttempts: 3 });
  const processorNc = await connectNats({ servers, maxAttempts: 3 });
  const processor = await Processor.start({ nc: processorNc, namespace, workflows, services: noServices, logger: silentLogger() });
  const client = await DurableClient.connect({ nc: clientNc, namespace });
  return {
    processor,
    client,
    stop: async () => {
      await processor.stop();
      await processorNc.close();
      await clientNc.close();
    },
  };
}

/**
 * Waits until `check` holds, looking again at each message on `subjects` (the changes that
 * bear on it); fails after the deadline. An acknowledgement is seen as
 * it is sent, a moment before the server has applied it: when it is the last change, the
 * look after it may come too early, so a look is also made after `LOOK_AGAIN_MS` of quiet.
 */
export async function untilChanged(nc: NatsConnection, subjects: readonly string[], what: string, check: () => Promise<boolean>, deadlineMs = 60_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  let changed = false;
  let wake: () => void = () => undefined;
  const subs = subjects.map((subject) =>
    nc.subscribe(subject, {
      callback: () => {
        changed = true;
        wake();
      },
    }),
  );
  try {
    await nc.flush();
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
      if (changed) {
        changed = false;
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(LOOK_AGAIN_MS, Math.max(0, deadline - Date.now())));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = () => undefined;
      changed = false;
    }
  } finally {
    for (const sub of subs) sub.unsubscribe();
  }
}

/** How long `untilChanged` waits with no change before it looks again, ms. */
const LOOK_AGAIN_MS = 2_000;
