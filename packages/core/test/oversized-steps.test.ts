/**
 * Outcomes too large for the journal on the real cluster (over the server's max payload):
 * the step fails for good with a TerminalError naming the step, the size and the limit; its
 * side effect is not run again, and an invocation that does not catch it fails with it.
 * An input too large for a command is refused at the submit, and an output too large for
 * the final state (with the input it carries) fails the invocation at once, each saying so.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJson, defineWorkflow, ErrorCode, InvalidArgumentError, JournalEntryTooLargeError, TerminalError } from '../src/index.js';
import { startTestEngine, type TestEngine } from './helpers.js';

const namespace = 'oversizetest';
const TWO_MIB = 2 * 1024 * 1024;

/** Runs of each invocation's side effect, by invocation ID. */
const sideEffects = new Map<string, number>();

const bigResult = defineWorkflow<{ catchIt: boolean }, { caught: string; code: string; step: number; size: number; limit: number }>(
  'big_result',
  async (ctx, { catchIt }) => {
    try {
      await ctx.run('make a big result', () => {
        sideEffects.set(ctx.invocationId, (sideEffects.get(ctx.invocationId) ?? 0) + 1);
        return 'x'.repeat(TWO_MIB);
      });
    } catch (err) {
      if (!catchIt || !(err instanceof JournalEntryTooLargeError)) throw err;
      return { caught: err.message, code: err.code, step: err.step, size: err.size, limit: err.limit };
    }
    throw new TerminalError('the step should have failed');
  },
);

/** Returns `bytes` characters. */
const bigOutput = defineWorkflow<{ bytes: number; padding?: string }, string>('big_output', async (ctx, { bytes }) => {
  sideEffects.set(ctx.invocationId, (sideEffects.get(ctx.invocationId) ?? 0) + 1);
  return 'y'.repeat(bytes);
});

let engine: TestEngine;

beforeAll(async () => {
  engine = await startTestEngine(namespace, [bigResult, bigOutput]);
});

afterAll(async () => {
  await engine?.stop();
});

describe('a step whose outcome is too large for the journal', () => {
  it('fails the invocation with the step, the size and the limit, and runs the side effect once', async () => {
    const { invocationId } = await engine.client.submit(bigResult, { catchIt: false });
    const final = await engine.client.waitForResult(invocationId, { timeoutMs: 20_000 });
    expect(final.status).toBe('failed');
    expect(final.error).toContain('step 0 (RUN:make a big result)');
    expect(final.error).toMatch(/entry of \d+ bytes is over the journal's limit of \d+ bytes/);
    expect(sideEffects.get(invocationId)).toBe(1);
    // The failure is journaled in place of the outcome: a replay throws it again.
    expect(final.journal.map((e) => e.error)).toEqual([final.error]);
  });

  it('reaches the workflow as a TerminalError it can catch', async () => {
    const { invocationId } = await engine.client.submit(bigResult, { catchIt: true });
    const final = await engine.client.waitForResult(invocationId, { timeoutMs: 20_000 });
    expect(final.status).toBe('completed');
    const output = decodeJson<{ code: string; step: number; size: number; limit: number }>(final.currentState);
    expect(output.code).toBe(ErrorCode.JournalEntryTooLarge);
    expect(output.step).toBe(0);
    expect(output.size).toBeGreaterThan(TWO_MIB);
    expect(output.limit).toBeLessThan(TWO_MIB);
    expect(sideEffects.get(invocationId)).toBe(1);
  });
});

describe('an input too large for a command', () => {
  it('is refused at the submit with the size and the limit', async () => {
    const submit = engine.client.submit('big_result', 'x'.repeat(TWO_MIB));
    await expect(submit).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(submit).rejects.toThrow(/the command is \d+ bytes, over the NATS server's max_payload \(\d+ bytes/);
  });
});

describe('a workflow output too large for the final state', () => {
  it('fails the invocation at once with the size and the limit', async () => {
    const { invocationId } = await engine.client.submit(bigOutput, { bytes: TWO_MIB });
    const final = await engine.client.waitForResult(invocationId, { timeoutMs: 20_000 });
    expect(final.status).toBe('failed');
    expect(final.error).toMatch(/^workflow output of \d+ bytes is over the limit of \d+ bytes/);
    // One run: no retry of a run that cannot end otherwise.
    expect(sideEffects.get(invocationId)).toBe(1);
  });

  it('counts the input the final state carries beside it: each fits, the two together do not', async () => {
    const bytes = 600 * 1024;
    const { invocationId } = await engine.client.submit(bigOutput, { bytes, padding: 'p'.repeat(bytes) });
    const final = await engine.client.waitForResult(invocationId, { timeoutMs: 20_000 });
    expect(final.status).toBe('failed');
    expect(final.error).toMatch(/^workflow output of \d+ bytes is over the limit of \d+ bytes \(the NATS server's max_payload, less \d+ bytes for the input/);
    expect(sideEffects.get(invocationId)).toBe(1);
  });
});
