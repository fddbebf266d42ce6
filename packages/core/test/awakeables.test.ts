/**
 * Awakeables on the real cluster: resolved and rejected from the client by ID, kept when
 * resolved before the workflow awaits them, settled at most once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AwakeableNotFoundError,
  ConflictError,
  decodeJson,
  defineWorkflow,
  DurableClient,
  TerminalError,
} from '../src/index.js';
import { startTestEngine, type TestEngine } from './helpers.js';

const namespace = 'awaketest';

const approval = defineWorkflow<{ sleepFirstMs?: number }, string>('approval', async (ctx, { sleepFirstMs }) => {
  const decision = ctx.awakeable<{ approved: boolean }>();
  if (sleepFirstMs) await ctx.sleep(sleepFirstMs);
  try {
    const { approved } = await decision.promise;
    return approved ? 'approved' : 'declined';
  } catch (err) {
    return err instanceof TerminalError ? `rejected: ${err.message}` : 'unexpected';
  }
});


/** Settles another invocation's awakeable from a workflow; reports what became of the step. */
const approver = defineWorkflow<{ awakeableId: string; approve: boolean }, string>('approver', async (ctx, { awakeableId, approve }) => {
  try {
    if (approve) await ctx.resolveAwakeable(awakeableId, { approved: true });
    else await ctx.rejectAwakeable(awakeableId, 'over budget');
    return 'settled';
  } catch (err) {
    return err instanceof TerminalError ? `refused: ${err.message}` : 'unexpected';
  }
});

let engine: TestEngine;
let client: DurableClient;

beforeAll(async () => {
  engine = await startTestEngine(namespace, [approval, approver]);
  ({ client } = engine);
});

afterAll(async () => {
  await engine?.stop();
});

describe('awakeables', () => {
  it('suspends until resolved by ID, then continues with the value; a second resolution conflicts', async () => {
    const { invocationId } = await client.submit(approval, {});
    await client.waitForStatus(invocationId, 'suspended');
    const id = `awk_0_${invocationId}`;

    await client.resolveAwakeable(id, { approved: true });
    await expect(client.resolveAwakeable(id, { approved: false })).rejects.toBeInstanceOf(ConflictError);

    const final = await client.waitForResult(invocationId);
    expect(final.status).toBe('completed');
    expect(decodeJson(final.currentState)).toBe('approved');
    expect(final.journal.filter((e) => e.stepType === `AWAKEABLE:${id}`)).toHaveLength(2);
  });

  it('keeps a resolution that arrives before the workflow awaits', async () => {
    const { invocationId } = await client.submit(approval, { sleepFirstMs: 1_500 });
    await client.waitForStatus(invocationId, 'suspended');
    await client.resolveAwakeable(`awk_0_${invocationId}`, { approved: false });
    const final = await client.waitForResult(invocationId, { timeoutMs: 15_000 });
    expect(decodeJson(final.currentState)).toBe('declined');
  });

  it('throws the rejection reason in the workflow', async () => {
    const { invocationId } = await client.submit(approval, {});
    await client.waitForStatus(invocationId, 'suspended');
    await client.rejectAwakeable(`awk_0_${invocationId}`, 'over budget');
    const final = await client.waitForResult(invocationId);
    expect(decodeJson(final.currentState)).toBe('rejected: over budget');
  });

  it('answers not-found for an unknown or malformed ID', async () => {
    await expect(client.resolveAwakeable('awk_0_no-such-invocation', 1)).rejects.toBeInstanceOf(AwakeableNotFoundError);
    await expect(client.resolveAwakeable('not an id', 1)).rejects.toBeInstanceOf(AwakeableNotFoundError);
  });

  it('is resolved or rejected by another workflow, once', async () => {
    const waiting = await client.submit(approval, {});
    await client.waitForStatus(waiting.invocationId, 'suspended');
    const id = `awk_0_${waiting.invocationId}`;
    expect(await client.invoke(approver, { awakeableId: id, approve: true })).toBe('settled');
    expect(decodeJson((await client.waitForResult(waiting.invocationId)).currentState)).toBe('approved');
    expect(await client.invoke(approver, { awakeableId: id, approve: false })).toMatch(/^refused: .*already resolved/);

    const rejected = await client.submit(approval, {});
    await client.waitForStatus(rejected.invocationId, 'suspended');
    expect(await client.invoke(approver, { awakeableId: `awk_0_${rejected.invocationId}`, approve: false })).toBe('settled');
    expect(decodeJson((await client.waitForResult(rejected.invocationId)).currentState)).toBe('rejected: over budget');
    expect(await client.invoke(approver, { awakeableId: 'awk_0_nobody', approve: true })).toMatch(/^refused: awakeable not found: awk_0_nobody/);
  });
});
