/**
 * IDs the engine derives for the invocations a workflow starts (`<sender id>/<step>`) on
 * the real cluster: no ID a user chooses can take one, so a user's invocation never stands
 * in for a workflow's child, and submitting a derived-form ID is refused.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJson, defineWorkflow, InvalidArgumentError } from '../src/index.js';
import { startTestEngine, type TestEngine } from './helpers.js';

const namespace = 'derivedidtest';

const note = defineWorkflow<{ text: string }, string>('note', async (_ctx, { text }) => text);

/** Sends one note (step 0) and invokes another (step 1). */
const starter = defineWorkflow<Record<string, never>, { sentTo: string; invoked: string }>('starter', async (ctx) => {
  const sentTo = await ctx.send(note, { text: 'sent by the workflow' });
  const invoked = await ctx.invoke(note, { text: 'invoked by the workflow' });
  return { sentTo, invoked };
});

let engine: TestEngine;

beforeAll(async () => {
  engine = await startTestEngine(namespace, [note, starter]);
});

afterAll(async () => {
  await engine?.stop();
});

describe('derived invocation IDs', () => {
  it('are never taken by IDs users chose, not even the old `<sender id>-<step>` form', async () => {
    const parentId = `parent-${randomUUID()}`;
    // A user's invocations under the IDs the children had before (`<sender id>-<step>`).
    for (const step of [0, 1]) {
      const { invocationId } = await engine.client.submit(note, { text: 'chosen by a user' }, { invocationId: `${parentId}-${step}` });
      expect((await engine.client.waitForResult(invocationId)).status).toBe('completed');
    }

    await engine.client.submit(starter, {}, { invocationId: parentId });
    const final = await engine.client.waitForResult(parentId, { timeoutMs: 20_000 });
    expect(final.status).toBe('completed');
    const { sentTo, invoked } = decodeJson<{ sentTo: string; invoked: string }>(final.currentState);
    expect(invoked).toBe('invoked by the workflow');
    expect(sentTo).not.toBe(`${parentId}-0`);
    const sent = await engine.client.waitForResult(sentTo, { timeoutMs: 20_000 });
    expect(decodeJson<string>(sent.currentState)).toBe('sent by the workflow');
    expect(sent.parentInvocationId).toBe(parentId);
    // The users' invocations are untouched.
    for (const step of [0, 1]) {
      const chosen = await engine.client.getState(`${parentId}-${step}`);
      expect(chosen?.parentInvocationId).toBe('');
      expect(decodeJson<string>(chosen?.currentState ?? new Uint8Array())).toBe('chosen by a user');
    }
  });

  it('cannot be chosen by a user', async () => {
    const submit = engine.client.submit(note, { text: 'x' }, { invocationId: `${randomUUID()}/0` });
    await expect(submit).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(submit).rejects.toThrow(/'\/' marks the IDs the engine derives/);
  });
});
