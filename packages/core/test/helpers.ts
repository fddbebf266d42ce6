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
