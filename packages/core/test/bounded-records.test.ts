/**
 * Records stay bounded however long a journal grows, on the real cluster: a 10,000-step
 * workflow runs, suspends, resumes from its journal stream and completes with a state of a
 * few KiB; a 900 KiB step result is journaled and read back whole, outside the state.
 */
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connectNats, decodeJson, defineWorkflow, engineNames } from '../src/index.js';
import { startTestEngine, type TestEngine } from './helpers.js';

const namespace = 'boundedtest';
const names = engineNames(namespace);
const STEPS = 10_000;
const BIG = 900 * 1024;
/** The most a state may take: the inline journal's bound (32 KiB) and room for the rest. */
const STATE_BOUND = 40 * 1024;

/** 10,000 steps, then a durable sleep: the run that resumes it replays them all from the journal stream. */
const longJournal = defineWorkflow<{ steps: number }, number>('long_journal', async (ctx, { steps }) => {
  let sum = 0;
  for (let i = 0; i < steps; i++) sum += await ctx.run(`step ${i}`, () => i);
  await ctx.sleep(1_500);
  return sum;
});

/** One step whose result is 900 KiB. */
const bigStep = defineWorkflow<unknown, number>('big_step', async (ctx) => {
  const big = await ctx.run('make 900 KiB', () => 'z'.repeat(BIG));
  return big.length;
});

let engine: TestEngine;
let nc: NatsConnection;
let states: KV;

beforeAll(async () => {
  engine = await startTestEngine(namespace, [longJournal, bigStep]);
  nc = await connectNats({ servers: inject('natsUrl').split(','), maxAttempts: 3 });
  states = await new Kvm(nc).open(names.stateBucket);
});

afterAll(async () => {
  await engine?.stop();
  await nc?.close();
});

/** The bytes of an invocation's stored state. */
async function stateBytes(invocationId: string): Promise<number> {
  return (await states.get(invocationId))?.value.length ?? 0;
}

describe('bounded records', () => {
  it('runs a 10,000-step workflow through a suspension, its state staying a few KiB', { timeout: 600_000 }, async () => {
    const { client } = engine;
    const { invocationId } = await client.submit(longJournal, { steps: STEPS });
    const suspended = await client.waitForStatus(invocationId, 'suspended', { timeoutMs: 480_000 });
    expect(suspended.journalLength).toBe(STEPS + 1);
    // Part of the journal inline, the rest only in the journal stream.
    expect(suspended.journal.length).toBeLessThan(STEPS);
    expect(await stateBytes(invocationId)).toBeLessThan(STATE_BOUND);

    const final = await client.waitForResult(invocationId, { timeoutMs: 120_000 });
    expect(final.status).toBe('completed');
    expect(decodeJson(final.currentState)).toBe((STEPS * (STEPS - 1)) / 2);
    expect(await stateBytes(invocationId)).toBeLessThan(STATE_BOUND);
    const journal = await client.getJournal(invocationId);
    // Every step once, in order, then the sleep: started, and completed by the run that resumed.
    const steps = journal.filter((e) => e.stepType !== 'SLEEP');
    expect(steps.map((e) => e.stepNumber)).toEqual([...Array(STEPS).keys()].map((i) => i + (steps[0]?.stepNumber ?? 0)));
    expect(journal.filter((e) => e.stepType === 'SLEEP')).toHaveLength(2);
  });

  it('journals a 900 KiB step result, outside the state', { timeout: 120_000 }, async () => {
    const { client } = engine;
    const { invocationId } = await client.submit(bigStep, {});
    const final = await client.waitForResult(invocationId, { timeoutMs: 60_000 });
    expect(final.status).toBe('completed');
    expect(decodeJson(final.currentState)).toBe(BIG);
    expect(await stateBytes(invocationId)).toBeLessThan(STATE_BOUND);
    const [entry] = await client.getJournal(invocationId);
    expect(decodeJson<string>(entry!.response)).toHaveLength(BIG);
  });
});
