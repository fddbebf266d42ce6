/**
 * Retention on the real cluster: ended invocations (completed, failed, cancelled) go with
 * every record of them once their retention has passed; live ones (running, suspended for
 * a long sleep, waiting on an awakeable, holding or queued for a key) stay, also when a
 * purge command reaches them; a child stays while its parent may still read its outcome;
 * a workflow's own retention wins over the processor's; one that left nothing but its state
 * and index entry has both expire by themselves, with no purge; one invocation can be purged now.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CommandKind, CommandSchema } from '../src/gen/durable/durable_pb.js';
import {
  ConflictError,
  connectNats,
  createHttpApi,
  createLogger,
  decodeJson,
  defineWorkflow,
  DurableClient,
  engineNames,
  InvocationNotFoundError,
  Processor,
  silentLogger,
  TerminalError,
} from '../src/index.js';
import { DEFAULT_PARTITIONS, partitionConsumer } from '../src/nats/setup.js';
import { keyedStateKey } from '../src/engine/keyed-state.js';
import { noServices, untilChanged } from './helpers.js';

const namespace = 'retentiontest';
const names = engineNames(namespace);
const RETENTION_MS = 1_000;
const HOUR_MS = 3_600_000;

/** Released by the test: a run blocked in a step stays `running` until then. */
let releaseRunning: () => void = () => undefined;
const running = new Promise<void>((resolve) => {
  releaseRunning = resolve;
});

const quick = defineWorkflow<{ n: number }, number>('quick', async (ctx, { n }) => ctx.run('double', () => n * 2));
const failing = defineWorkflow<unknown, never>('failing', async (ctx) => {
  await ctx.run('fail', () => {
    throw new TerminalError('no');
  });
  throw new TerminalError('unreachable');
});
const sleepy = defineWorkflow<unknown, string>('sleepy', async (ctx) => {
  await ctx.sleep(HOUR_MS);
  return 'woke';
});
const waiting = defineWorkflow<unknown, string>('waiting', async (ctx) => ctx.awakeable<string>().promise);
const blocked = defineWorkflow<unknown, string>('blocked', async (ctx) => ctx.run('block', () => running.then(() => 'done')));
const keyed = defineWorkflow<unknown, string>('keyed', async (ctx) => ctx.awakeable<string>().promise, { exclusive: true });
const kept = defineWorkflow<unknown, string>('kept', async () => 'kept forever', { retention: 0 });
const longKept = defineWorkflow<unknown, string>('long-kept', async () => 'kept a day', { retention: 24 * HOUR_MS });
const longKeptSteps = defineWorkflow<unknown, string>(
  'long-kept-steps',
  async (ctx) => `${await ctx.run('first', () => 'kept')} ${await ctx.run('second', () => 'a day')}`,
  { retention: 24 * HOUR_MS },
);
const longKeptNapper = defineWorkflow<unknown, number>(
  'long-kept-napper',
  async (ctx) => {
    const before = await ctx.now();
    await ctx.sleep(1_500);
    return (await ctx.now()) - before;
  },
  { retention: 24 * HOUR_MS },
);
const child = defineWorkflow<unknown, string>('child', async (ctx) => ctx.awakeable<string>().promise);
const parent = defineWorkflow<unknown, string>('parent', async (ctx) => `child said ${await ctx.invoke(child, {})}`);

const workflows = [quick, failing, sleepy, waiting, blocked, keyed, kept, longKept, longKeptSteps, longKeptNapper, child, parent];

let nc: NatsConnection;
let processorNc: NatsConnection;
let processor: Processor;
let client: DurableClient;
let jsm: JetStreamManager;

beforeAll(async () => {
  const servers = inject('natsUrl').split(',');
  nc = await connectNats({ servers, maxAttempts: 3 });
  processorNc = await connectNats({ servers, maxAttempts: 3 });
  processor = await Processor.start({ nc: processorNc, namespace, workflows, services: noServices, logger: process.env.RETENTION_DEBUG ? createLogger({ name: 'processor' }) : silentLogger(), retentionMs: RETENTION_MS });
  client = await DurableClient.connect({ nc, namespace });
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  releaseRunning();
  await processor?.stop();
  await processorNc?.close();
  await nc?.close();
});

/** Messages on a subject of a stream. */
async function count(stream: string, subject: string): Promise<number> {
  const info = await jsm.streams.info(stream, { subjects_filter: subject });
  return Object.values(info.state.subjects ?? {}).reduce((sum, n) => sum + n, 0);
}

/** Every record the engine keeps of an invocation, as counts of messages. */
async function records(id: string): Promise<Record<string, number>> {
  return {
    state: await count(`KV_${names.stateBucket}`, `$KV.${names.stateBucket}.${id}`),
    journal: await count(names.journalStream, `${names.journalSubject}.${id}`),
    index: await count(names.indexStream, `${names.indexSubject}.*.*.${id}`),
    timers: await count(names.commandsStream, `${names.timersSubject}.${id}.>`),
    queue: await count(names.keyedQueueStream, `${names.keyedQueueSubject}.*.${id}`),
  };
}

/**
 * The messages that tell of a change `until` looks for: index entries and timers written,
 * state writes, the API's advisory of each request it has carried out (a filtered purge
 * among them), and the acknowledgements of commands.
 */
function changeSubjects(): string[] {
  return [`${names.indexSubject}.>`, `${names.timersSubject}.>`, `$KV.${names.stateBucket}.>`, '$JS.EVENT.ADVISORY.API', `$JS.ACK.${names.commandsStream}.>`];
}

/** Waits until `check` holds, looking again at each change the cluster tells of (see {@link changeSubjects}). */
function until(what: string, check: () => Promise<boolean>, deadlineMs = 60_000): Promise<void> {
  return untilChanged(nc, changeSubjects(), what, check, deadlineMs);
}

/** The awakeable an invocation waits on, from its journal. */
async function awakeableOf(id: string): Promise<string> {
  const entry = (await client.getJournal(id)).find((e) => e.stepType.startsWith('AWAKEABLE:'));
  if (!entry) throw new Error(`${id} has no awakeable`);
  return entry.stepType.slice('AWAKEABLE:'.length);
}

/**
 * True once every command queued so far has been handled but `running` (commands of runs
 * still in progress): none other pending or unacknowledged on any partition.
 */
async function commandsHandled(running = 0): Promise<boolean> {
  let left = 0;
  for (let p = 0; p < DEFAULT_PARTITIONS; p++) {
    const info = await jsm.consumers.info(names.commandsStream, partitionConsumer('processor-1', p));
    left += info.num_pending + info.num_ack_pending;
  }
  return left <= running;
}

describe('retention', () => {
  it('removes ended invocations with every record once their retention passes, and leaves live ones alone', { timeout: 240_000 }, async () => {
    // Live: running, asleep for an hour, waiting on an awakeable, holding a key, queued for it.
    const live = {
      // Its own key: a run in progress holds up the commands of its key behind it.
      running: (await client.submit(blocked, {}, { partitionKey: 'blocked' })).invocationId,
      sleeping: (await client.submit(sleepy, {})).invocationId,
      waiting: (await client.submit(waiting, {})).invocationId,
      holding: (await client.submit(keyed, {}, { partitionKey: 'shared' })).invocationId,
    };
    await client.waitForStatus(live.running, 'running');
    for (const id of [live.sleeping, live.waiting, live.holding]) await client.waitForStatus(id, 'suspended');
    const queued = (await client.submit(keyed, {}, { partitionKey: 'shared' })).invocationId;
    await client.waitForStatus(queued, 'pending');
    const liveIds = [...Object.values(live), queued];
    // Each listed under its status (index entries are written in the background).
    await until('the live ones are indexed', async () => {
      for (const id of liveIds) {
        const status = (await client.getState(id))?.status;
        if ((await count(names.indexStream, `${names.indexSubject}.${status}.*.${id}`)) !== 1) return false;
      }
      return true;
    });
    const before = Object.fromEntries(await Promise.all(liveIds.map(async (id) => [id, await records(id)] as const)));

    // Ended: completed, failed, completed from an awakeable, cancelled in a long sleep (its timer waits).
    // Each awaited from its submission on: its end is announced, and its state may be gone
    // (its retention is a second) by the time the test would look.
    const submitted = async (run: Promise<{ invocationId: string }>) => {
      const { invocationId } = await run;
      return { id: invocationId, end: client.waitForResult(invocationId, { timeoutMs: 120_000 }) };
    };
    // Counted from before they start, so that the counts must follow their going.
    for (const handler of ['quick', 'failing']) expect((await client.getWorkflowStats({ handler })).total).toBe(0);
    const completedRun = await submitted(client.submit(quick, { n: 21 }));
    const failedRun = await submitted(client.submit(failing, {}));
    const resolvedRun = await submitted(client.submit(waiting, {}));
    const cancelledRun = await submitted(client.submit(sleepy, {}));
    const [completed, failed, resolved, cancelled] = [completedRun.id, failedRun.id, resolvedRun.id, cancelledRun.id];
    await client.waitForStatus(resolved, 'suspended');
    const resolvedAwakeable = await awakeableOf(resolved);
    await client.resolveAwakeable(resolvedAwakeable, 'yes');
    await client.waitForStatus(cancelled, 'suspended');
    expect((await records(cancelled)).timers).toBe(1);
    await client.cancel(cancelled);
    const endings = await Promise.all([completedRun, failedRun, resolvedRun, cancelledRun].map((r) => r.end));
    expect(endings.map((e) => e.status)).toEqual(['completed', 'failed', 'completed', 'cancelled']);
    const ended = [completed, failed, resolved, cancelled];

    // A purge reaching a live invocation (as if scheduled for it by mistake) removes nothing.
    // (Not the running one: its command would wait behind the run, in its key's line.)
    const js = jetstream(nc);
    for (const id of liveIds.filter((id) => id !== live.running)) {
      const state = await client.getState(id);
      const purge = create(CommandSchema, { invocationId: id, handler: state!.handler, partitionKey: state!.partitionKey, kind: CommandKind.PURGE, retentionMs: 0n });
      await js.publish(`${names.commandsSubject}.${state!.partitionKey}`, toBinary(CommandSchema, purge));
    }

    // The completed one left nothing but its state and index entry: they expire by themselves
    // (the server tells of that to no one, hence looks at least every 2 s); the others are purged.
    await until('the ended invocations are gone with every record', async () => {
      for (const id of ended) if (Object.values(await records(id)).some((n) => n > 0)) return false;
      return true;
    });
    for (const id of ended) expect(await client.getState(id)).toBeNull();
    // The server's counts follow both ways of going.
    expect((await client.getWorkflowStats({ handler: 'quick' })).total).toBe(0);
    expect((await client.getWorkflowStats({ handler: 'failing' })).total).toBe(0);
    expect(await jsm.streams.getMessage(`KV_${names.awakeablesBucket}`, { last_by_subj: `$KV.${names.awakeablesBucket}.${resolvedAwakeable}` })).toBeNull();

    await until('every command but the running one has been handled', () => commandsHandled(1));
    for (const id of liveIds) {
      expect((await client.getState(id))?.status, id).toMatch(/running|suspended|pending/);
      expect(await records(id), id).toEqual(before[id]);
    }
    expect((await records(live.sleeping)).timers).toBe(1);
    expect((await records(queued)).queue).toBe(1);
    const key = await jsm.streams.getMessage(`KV_${names.keyedStateBucket}`, { last_by_subj: `$KV.${names.keyedStateBucket}.${keyedStateKey('shared')}` });
    expect(key).not.toBeNull();

    // Live ones end, then go too; the queued one gets the key and its turn first.
    releaseRunning();
    await client.resolveAwakeable(await awakeableOf(live.waiting), 'done');
    await client.resolveAwakeable(await awakeableOf(live.holding), 'first');
    await client.waitForStatus(queued, 'suspended');
    const queuedEnd = client.waitForResult(queued, { timeoutMs: 120_000 });
    await client.resolveAwakeable(await awakeableOf(queued), 'second');
    expect(decodeJson((await queuedEnd).currentState)).toBe('second');
    await until('the ended invocations are gone', async () => {
      for (const id of [live.running, live.waiting, live.holding, queued]) if ((await client.getState(id)) !== null) return false;
      return true;
    });
  });

  it('keeps a child while its parent may still read its outcome, and removes both once the parent has ended', { timeout: 240_000 }, async () => {
    const { invocationId: parentId } = await client.submit(parent, {});
    await client.waitForStatus(parentId, 'suspended');
    const childId = (await client.getJournal(parentId)).map((e) => decodeJson<{ invocationId?: string }>(e.request).invocationId).find(Boolean)!;
    await client.waitForStatus(childId, 'suspended');
    // The parent is paused: the child's end wakes nobody, and its retention passes.
    await client.pause(parentId);
    await client.waitForStatus(parentId, 'paused');
    await client.resolveAwakeable(await awakeableOf(childId), 'hello');
    const ended = await client.waitForResult(childId, { timeoutMs: 30_000 });
    // Its purge comes, finds the parent paused, and is scheduled again for a later look.
    await until('the child has been looked at and kept', async () => {
      const timer = await jsm.streams.getMessage(names.commandsStream, { last_by_subj: `${names.timersSubject}.${childId}.purge` });
      const at = /^@at (.+)$/.exec(timer?.header.get('Nats-Schedule') ?? '')?.[1];
      return at !== undefined && Date.parse(at) > Number(ended.endedAtMs) + RETENTION_MS;
    });
    expect((await client.getState(childId))?.status).toBe('completed');
    expect((await records(childId)).timers).toBe(1);
    await expect(client.purge(childId)).rejects.toThrow(`its parent ${parentId} is paused`);

    const parentEnd = client.waitForResult(parentId, { timeoutMs: 120_000 });
    await client.resume(parentId);
    expect(decodeJson((await parentEnd).currentState)).toBe('child said hello');
    await until('the parent is gone', async () => (await client.getState(parentId)) === null);
    // The child's next look is a minute on; purged now by hand, as the parent has ended.
    await client.purge(childId);
    expect(await records(childId)).toEqual({ state: 0, journal: 0, index: 0, timers: 0, queue: 0 });
  });

  it("keeps a workflow's invocations by its own retention, and purges one now on request", { timeout: 240_000 }, async () => {
    const forever = (await client.submit(kept, {})).invocationId;
    const day = (await client.submit(longKept, {})).invocationId;
    const steps = (await client.submit(longKeptSteps, {})).invocationId;
    for (const id of [forever, day, steps]) await client.waitForResult(id, { timeoutMs: 30_000 });
    await until('every command has been handled', () => commandsHandled());
    expect((await records(forever)).timers).toBe(0);
    // It left nothing but its state and index entry: both go by themselves in a day, no purge waits.
    expect(await records(day)).toEqual({ state: 1, journal: 0, index: 1, timers: 0, queue: 0 });
    const ttl = async (stream: string, subject: string) => (await jsm.streams.getMessage(stream, { last_by_subj: subject }))?.header.get('Nats-TTL');
    expect(await ttl(`KV_${names.stateBucket}`, `$KV.${names.stateBucket}.${day}`)).toBe('86400s');
    expect(await ttl(names.indexStream, `${names.indexSubject}.completed.long-kept.${day}`)).toBe('86400s');
    expect(await ttl(`KV_${names.stateBucket}`, `$KV.${names.stateBucket}.${forever}`)).toBe('');
    // A rebuilt index entry goes with its state: it gets the time the state has left.
    await client.reindex();
    const left = Number((await ttl(names.indexStream, `${names.indexSubject}.completed.long-kept.${day}`))?.replace(/s$/, ''));
    expect(left).toBeGreaterThan(86_400 - 120);
    expect(left).toBeLessThanOrEqual(86_400);
    expect(await ttl(names.indexStream, `${names.indexSubject}.completed.kept.${forever}`)).toBe('');
    // Its first step is in the journal stream: its purge waits a day in the stream, its state has no TTL.
    expect(await records(steps)).toEqual({ state: 1, journal: 1, index: 1, timers: 1, queue: 0 });
    expect(await ttl(`KV_${names.stateBucket}`, `$KV.${names.stateBucket}.${steps}`)).toBe('');
    // It read the clock and slept: its suspended state alone held that, the sleep cost no
    // journal append, and once it ended it too goes by itself.
    const napped = (await client.submit(longKeptNapper, {})).invocationId;
    const asleep = await client.waitForStatus(napped, 'suspended', { timeoutMs: 30_000 });
    expect([asleep.journalStream, asleep.journal.map((e) => e.stepType)]).toEqual(['', ['NOW', 'SLEEP']]);
    expect((await records(napped)).journal).toBe(0);
    expect((await client.waitForResult(napped, { timeoutMs: 30_000 })).status).toBe('completed');
    await until('every command has been handled', () => commandsHandled());
    expect(await records(napped)).toEqual({ state: 1, journal: 0, index: 1, timers: 0, queue: 0 });
    expect(await ttl(`KV_${names.stateBucket}`, `$KV.${names.stateBucket}.${napped}`)).toBe('86400s');
    expect((await client.getJournal(napped)).map((e) => e.stepType)).toEqual(['NOW', 'SLEEP', 'SLEEP', 'NOW']);

    const api = createHttpApi({ client });
    expect((await api.request(`/api/workflows/${unknownId()}/purge`, { method: 'POST' })).status).toBe(404);
    const response = await api.request(`/api/workflows/${forever}/purge`, { method: 'POST' });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ invocation_id: forever, purged: true });
    expect(await records(forever)).toEqual({ state: 0, journal: 0, index: 0, timers: 0, queue: 0 });
    for (const id of [day, steps, napped]) {
      await client.purge(id);
      expect(await records(id)).toEqual({ state: 0, journal: 0, index: 0, timers: 0, queue: 0 });
    }
    await expect(client.purge(day)).rejects.toBeInstanceOf(InvocationNotFoundError);

    const sleeping = (await client.submit(sleepy, {})).invocationId;
    await client.waitForStatus(sleeping, 'suspended');
    await expect(client.purge(sleeping)).rejects.toBeInstanceOf(ConflictError);
    expect((await api.request(`/api/workflows/${sleeping}/purge`, { method: 'POST' })).status).toBe(409);
    expect((await client.getState(sleeping))?.status).toBe('suspended');
  });
});

/** An invocation ID nobody used. */
function unknownId(): string {
  return `unknown-${Date.now()}`;
}
