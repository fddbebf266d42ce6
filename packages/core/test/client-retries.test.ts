/**
 * Every client operation is safe to retry until it has taken full effect: a caller that dies
 * between an operation's write and the wake-up that follows it (played by the client's
 * `afterWrite` hook) retries, and the invocation goes on instead of staying put for good.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ConflictError, connectNats, decodeJson, defineWorkflow, DurableClient, TerminalError } from '../src/index.js';
import { startTestEngine, type TestEngine } from './helpers.js';

const namespace = 'retrytest';

/** The client "dies" right after its write: nothing that should follow it is sent. */
class DiedAfterWrite extends Error {}

const approval = defineWorkflow<Record<string, never>, string>('cr_approval', async (ctx) => {
  const decision = ctx.awakeable<string>();
  try {
    return `approved: ${await decision.promise}`;
  } catch (err) {
    return err instanceof TerminalError ? `rejected: ${err.message}` : 'unexpected';
  }
});

/** Holds its partition key until its awakeable is resolved. */
const holder = defineWorkflow<Record<string, never>, string>(
  'cr_holder',
  async (ctx) => {
    const release = ctx.awakeable<string>();
    return release.promise;
  },
  { exclusive: true },
);

let engine: TestEngine;
let client: DurableClient;
let dying: DurableClient;
let dyingNc: Awaited<ReturnType<typeof connectNats>>;

beforeAll(async () => {
  engine = await startTestEngine(namespace, [approval, holder]);
  client = engine.client;
  dyingNc = await connectNats({ servers: inject('natsUrl').split(','), maxAttempts: 3 });
  dying = await DurableClient.connect({
    nc: dyingNc,
    namespace,
    afterWrite: (operation, id) => {
      throw new DiedAfterWrite(`${operation} ${id}: died after the write`);
    },
  });
});

afterAll(async () => {
  await dyingNc?.close();
  await engine?.stop();
});

describe('a client operation retried after its caller died between write and wake-up', () => {
  it('resolve: the retry wakes the invocation; only another value conflicts', async () => {
    const { invocationId } = await client.submit(approval, {});
    await client.waitForStatus(invocationId, 'suspended');
    const id = `awk_0_${invocationId}`;

    await expect(dying.resolveAwakeable(id, 'yes')).rejects.toBeInstanceOf(DiedAfterWrite);
    expect((await client.getState(invocationId))?.status).toBe('suspended');
    await client.resolveAwakeable(id, 'yes');
    await expect(client.resolveAwakeable(id, 'no')).rejects.toBeInstanceOf(ConflictError);
    await expect(client.rejectAwakeable(id, 'yes')).rejects.toBeInstanceOf(ConflictError);

    const final = await client.waitForResult(invocationId);
    expect(decodeJson(final.currentState)).toBe('approved: yes');
    await client.resolveAwakeable(id, 'yes'); // Once more after the end: still the same outcome, no error.
  });

  it('reject: the retry with the same reason wakes the invocation', async () => {
    const { invocationId } = await client.submit(approval, {});
    await client.waitForStatus(invocationId, 'suspended');
    const id = `awk_0_${invocationId}`;

    await expect(dying.rejectAwakeable(id, 'over budget')).rejects.toBeInstanceOf(DiedAfterWrite);
    await client.rejectAwakeable(id, 'over budget');
    await expect(client.rejectAwakeable(id, 'too late')).rejects.toBeInstanceOf(ConflictError);

    const final = await client.waitForResult(invocationId);
    expect(decodeJson(final.currentState)).toBe('rejected: over budget');
  });

  it('pause and resume: the retried resume wakes the invocation it had marked suspended', async () => {
    const { invocationId } = await client.submit(approval, {});
    await client.waitForStatus(invocationId, 'suspended');
    await expect(dying.pause(invocationId)).rejects.toBeInstanceOf(DiedAfterWrite);
    await client.pause(invocationId);
    expect((await client.getState(invocationId))?.status).toBe('paused');
    // Settled, and no wake-up sent: nothing but the resume below wakes the invocation.
    await expect(dying.resolveAwakeable(`awk_0_${invocationId}`, 'later')).rejects.toBeInstanceOf(DiedAfterWrite);

    await expect(dying.resume(invocationId)).rejects.toBeInstanceOf(DiedAfterWrite);
    expect((await client.getState(invocationId))?.status).toBe('suspended');
    await client.resume(invocationId);

    const final = await client.waitForResult(invocationId);
    expect(decodeJson(final.currentState)).toBe('approved: later');
    await expect(client.resume(invocationId)).rejects.toBeInstanceOf(ConflictError);
  });

  it('cancel: the retry passes the cancelled holder’s partition key on to the next invocation', async () => {
    const first = await client.submit(holder, {}, { partitionKey: 'cr-key' });
    await client.waitForStatus(first.invocationId, 'suspended');
    const next = await client.submit(holder, {}, { partitionKey: 'cr-key' });
    await client.waitForStatus(next.invocationId, 'pending');

    await expect(dying.cancel(first.invocationId)).rejects.toBeInstanceOf(DiedAfterWrite);
    expect((await client.getState(first.invocationId))?.status).toBe('cancelled');
    await client.cancel(first.invocationId);

    await client.waitForStatus(next.invocationId, 'suspended');
    await client.resolveAwakeable(`awk_0_${next.invocationId}`, 'done');
    expect(decodeJson((await client.waitForResult(next.invocationId)).currentState)).toBe('done');
    await expect(client.cancel(next.invocationId)).rejects.toBeInstanceOf(ConflictError);
  });
});
