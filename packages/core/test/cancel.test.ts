/**
 * Cancellation on the real cluster: a suspended invocation ends at once, a running one at
 * its next step boundary; ended and unknown invocations are refused clearly.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  ConflictError,
  connectNats,
  defineWorkflow,
  DurableClient,
  InvocationNotFoundError,
  Processor,
  silentLogger,
  type ServiceInvoker,
} from '../src/index.js';

const namespace = 'canceltest';

const waiter = defineWorkflow('waiter', async (ctx) => ctx.awakeable<string>().promise);

const plodder = defineWorkflow<{ steps: number }, number>('plodder', async (ctx, { steps }) => {
  for (let i = 0; i < steps; i++) {
    await ctx.sleep(100);
    await ctx.run('tick', () => i);
  }
  return steps;
});

const noServices: ServiceInvoker = {
  call: async () => {
    throw new Error('no services here');
  },
  close: () => undefined,
};

let nc: NatsConnection;
let processorNc: NatsConnection;
let processor: Processor;
let client: DurableClient;

/** Resolves once the invocation has the status (watched, not polled). */
async function statusOf(id: string, status: string): Promise<void> {
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), 10_000);
  try {
    await new Promise<void>((resolve, reject) => {
      client.watch((s) => s.invocationId === id && s.status === status && resolve(), stop.signal).then(() => reject(new Error(`${id} never ${status}`)), reject);
      void client.getState(id).then((s) => s?.status === status && resolve());
    });
  } finally {
    clearTimeout(timer);
    stop.abort();
  }
}

beforeAll(async () => {
  const servers = inject('natsUrl').split(',');
  nc = await connectNats({ servers, maxAttempts: 3 });
  processorNc = await connectNats({ servers, maxAttempts: 3 });
  processor = await Processor.start({ nc: processorNc, namespace, workflows: [waiter, plodder], services: noServices, logger: silentLogger() });
  client = await DurableClient.connect({ nc, namespace });
});

afterAll(async () => {
  await processor?.stop();
  await processorNc?.close();
  await nc?.close();
});

describe('cancel', () => {
  it('ends a suspended invocation at once', async () => {
    const { invocationId } = await client.submit(waiter, {});
    await statusOf(invocationId, 'suspended');
    const result = client.waitForResult(invocationId);
    await client.cancel(invocationId);
    const final = await result;
    expect(final.status).toBe('cancelled');
    await expect(client.cancel(invocationId)).rejects.toBeInstanceOf(ConflictError);
  });

  it('stops a running invocation at its next step boundary', async () => {
    const { invocationId } = await client.submit(plodder, { steps: 100 });
    await statusOf(invocationId, 'running');
    await client.cancel(invocationId);
    const final = await client.waitForResult(invocationId, { timeoutMs: 10_000 });
    expect(final.status).toBe('cancelled');
    expect(final.error).toBe('invocation cancelled');
    expect(final.journalLength).toBeLessThan(200);
  });

  it('refuses an unknown invocation', async () => {
    await expect(client.cancel('no-such-invocation')).rejects.toBeInstanceOf(InvocationNotFoundError);
  });
});
