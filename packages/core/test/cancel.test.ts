/**
 * Cancellation on the real cluster: a suspended invocation ends at once, a running one at
 * its next step boundary; ended and unknown invocations are refused clearly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConflictError,
  defineWorkflow,
  DurableClient,
  InvocationNotFoundError,
  Processor,
} from '../src/index.js';
import { settles, startTestEngine, type TestEngine } from './helpers.js';

const namespace = 'canceltest';

const waiter = defineWorkflow('waiter', async (ctx) => ctx.awakeable<string>().promise);

const plodder = defineWorkflow<{ steps: number }, number>('plodder', async (ctx, { steps }) => {
  for (let i = 0; i < steps; i++) {
    await ctx.sleep(100);
    await ctx.run('tick', () => i);
  }
  return steps;
});



let engine: TestEngine;
let processor: Processor;
let client: DurableClient;

beforeAll(async () => {
  engine = await startTestEngine(namespace, [waiter, plodder]);
  ({ processor, client } = engine);
});

afterAll(async () => {
  await engine?.stop();
});

describe('cancel', () => {
  it('ends a suspended invocation at once', async () => {
    const { invocationId } = await client.submit(waiter, {});
    await client.waitForStatus(invocationId, 'suspended');
    const result = client.waitForResult(invocationId);
    await client.cancel(invocationId);
    const final = await result;
    expect(final.status).toBe('cancelled');
    await client.cancel(invocationId); // A retry: it succeeds.
  });

  it('stops a running invocation at its next step boundary', async () => {
    const { invocationId } = await client.submit(plodder, { steps: 100 });
    await client.waitForStatus(invocationId, 'running');
    await client.cancel(invocationId);
    const final = await client.waitForResult(invocationId, { timeoutMs: 10_000 });
    expect(final.status).toBe('cancelled');
    expect(final.error).toBe('invocation cancelled');
    expect(final.journalLength).toBeLessThan(200);
  });

  it('pauses a running invocation at a step boundary and resumes the same invocation from its journal', async () => {
    const { invocationId } = await client.submit(plodder, { steps: 8 });
    await client.waitForStatus(invocationId, 'running');
    await client.pause(invocationId);
    await client.waitForStatus(invocationId, 'paused');
    const paused = await client.getState(invocationId);
    // The run ends (and its command is acknowledged) just after the state is written.
      expect(await settles(() => processor.running === 0)).toBe(true);
    await client.resume(invocationId);
    const final = await client.waitForResult(invocationId, { timeoutMs: 15_000 });
    expect(final.status).toBe('completed');
    expect(final.invocationId).toBe(paused?.invocationId);
    expect(final.journal.filter((e) => e.stepType === 'RUN:tick')).toHaveLength(8);
    await expect(client.cancel(invocationId)).rejects.toBeInstanceOf(ConflictError);
  });

  it('keeps a paused invocation still when what it waits for arrives, until resumed', async () => {
    const { invocationId } = await client.submit(waiter, {});
    await client.waitForStatus(invocationId, 'suspended');
    await client.pause(invocationId);
    await client.waitForStatus(invocationId, 'paused');
    await client.resolveAwakeable(`awk_0_${invocationId}`, 'go');
    await expect(client.resume('no-such-invocation')).rejects.toBeInstanceOf(InvocationNotFoundError);
    await client.resume(invocationId);
    const final = await client.waitForResult(invocationId);
    expect(final.status).toBe('completed');
    await expect(client.resume(invocationId)).rejects.toBeInstanceOf(ConflictError);
  });

  it('refuses an unknown invocation', async () => {
    await expect(client.cancel('no-such-invocation')).rejects.toBeInstanceOf(InvocationNotFoundError);
  });
});
