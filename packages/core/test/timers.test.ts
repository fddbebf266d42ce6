/**
 * Durable timers on the real cluster: a sleeping invocation is suspended (no processor
 * holds it), and wakes within a second of its due time, also across a processor restart.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import {
  connectNats,
  decodeJson,
  defineWorkflow,
  DurableClient,
  EntryPhase,
  Processor,
  silentLogger,
} from '../src/index.js';
import { noServices, settles } from './helpers.js';

const namespace = 'timertest';

const sleeper = defineWorkflow<{ ms: number }, { wakeAtMs: number; wokeAtMs: number }>('sleeper', async (ctx, { ms }) => {
  const start = await ctx.now();
  await ctx.sleep(ms);
  return { wakeAtMs: start + ms, wokeAtMs: await ctx.now() };
});

/** The workflow calls no service. */


let nc: NatsConnection;
let client: DurableClient;

/** A processor on a connection of its own, as in its own process; stopping it closes the connection. */
async function startProcessor(): Promise<{ processor: Processor; stop: () => Promise<void> }> {
  const own = await connectNats({ servers: inject('natsUrl').split(','), maxAttempts: 3 });
  const processor = await Processor.start({ nc: own, namespace, workflows: [sleeper], services: noServices, logger: silentLogger(), ackWaitSeconds: 5 });
  return {
    processor,
    stop: async () => {
      await processor.stop();
      await own.close();
    },
  };
}


beforeAll(async () => {
  nc = await connectNats({ servers: inject('natsUrl').split(','), maxAttempts: 3 });
  const bootstrap = await startProcessor();
  client = await DurableClient.connect({ nc, namespace });
  await bootstrap.stop();
});

afterAll(async () => {
  await nc?.close();
});

describe('durable sleep', () => {
  it('suspends a sleeping invocation, holding nothing, and wakes it within a second of its due time', async () => {
    const { processor, stop } = await startProcessor();
    try {
      const { invocationId } = await client.submit(sleeper, { ms: 2_500 });
      const suspended = await client.waitForStatus(invocationId, 'suspended');
      expect(suspended.owner).toBe('');
      // The run ends (and its command is acknowledged) just after the state is written.
      expect(await settles(() => processor.running === 0)).toBe(true);

      const final = await client.waitForResult(invocationId, { timeoutMs: 15_000 });
      expect(final.status).toBe('completed');
      const { wakeAtMs, wokeAtMs } = decodeJson<{ wakeAtMs: number; wokeAtMs: number }>(final.currentState);
      expect(wokeAtMs).toBeGreaterThanOrEqual(wakeAtMs);
      expect(wokeAtMs - wakeAtMs).toBeLessThan(1_000);
      const sleeps = final.journal.filter((e) => e.stepType === 'SLEEP').map((e) => e.phase);
      expect(sleeps).toEqual([EntryPhase.STARTED, EntryPhase.COMPLETED]);
    } finally {
      await stop();
    }
  });

  it('keeps the timer while no processor runs and fires it once one is up again', async () => {
    const { stop: first } = await startProcessor();
    const { invocationId } = await client.submit(sleeper, { ms: 2_000 });
    await client.waitForStatus(invocationId, 'suspended');
    await first();

    const { stop: second } = await startProcessor();
    try {
      const final = await client.waitForResult(invocationId, { timeoutMs: 15_000 });
      expect(final.status).toBe('completed');
      const { wakeAtMs, wokeAtMs } = decodeJson<{ wakeAtMs: number; wokeAtMs: number }>(final.currentState);
      expect(wokeAtMs - wakeAtMs).toBeLessThan(1_000);
    } finally {
      await second();
    }
  });
});
