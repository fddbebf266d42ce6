/**
 * The processor and client against the real 3-node test cluster and a real HelloService.
 * Each file uses its own namespace, so its streams and bucket are its own.
 */
import { create, equals, toBinary } from '@bufbuild/protobuf';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startHelloService, type RunningHelloService } from '../../../apps/hello-service/src/hello-service.js';
import {
  CommandSchema,
  connectNats,
  createGrpcInvoker,
  decodeJson,
  defineWorkflow,
  DurableClient,
  engineNames,
  ExecutionStateSchema,
  FencedError,
  JournalEntrySchema,
  loadServiceRegistry,
  Processor,
  silentLogger,
  type ServiceInvoker,
} from '../src/index.js';
import { NatsJournalStore } from '../src/nats/journal-store.js';
import { NatsStateStore } from '../src/nats/state-store.js';

const namespace = 'proctest';
const names = engineNames(namespace);

/** Start and end times of runs, in the order they happened, to check ordering. */
const events: string[] = [];

const hello = defineWorkflow<{ name: string }, string>('hello', async (ctx, { name }) => {
  const res = await ctx.call<{ message: string }>('HelloService', 'SayHello', { name });
  return res.message;
});

const ordered = defineWorkflow<{ key: string; n: number }, number>('ordered', async (ctx, { key, n }) => {
  events.push(`start ${key}:${n}`);
  await ctx.call('HelloService', 'SayHello', { name: `${key}-${n}` });
  events.push(`end ${key}:${n}`);
  return n;
});

const longRun = defineWorkflow<{ steps: number }, number>('long_run', async (ctx, { steps }) => {
  let sum = 0;
  for (let i = 0; i < steps; i++) sum += await ctx.run('add', () => i);
  return sum;
});

let nc: NatsConnection;
let service: RunningHelloService;
let services: ServiceInvoker;
let processor: Processor;
let client: DurableClient;

beforeAll(async () => {
  nc = await connectNats({ servers: inject('natsUrl').split(','), maxAttempts: 3 });
  service = await startHelloService({ port: 0, host: '127.0.0.1', logger: silentLogger(), delayMs: 20 });
  services = createGrpcInvoker(loadServiceRegistry({ addresses: { HelloService: `127.0.0.1:${service.port}` } }));
  processor = await Processor.start({
    nc,
    namespace,
    workflows: [hello, ordered, longRun],
    services,
    logger: silentLogger(),
    maxConcurrent: 16,
    ackWaitSeconds: 5,
  });
  client = await DurableClient.connect({ nc, namespace });
});

afterAll(async () => {
  await processor?.stop();
  services?.close();
  await service?.stop();
  await nc?.close();
});

describe('processor', () => {
  it('runs a workflow end to end and keeps its journal in the final state', async () => {
    const message = await client.invoke(hello, { name: 'Integration' });
    expect(message).toBe('Hello, Integration! Welcome to Durable Execution on NATS JetStream.');
  });

  it('writes one durable write per step: a journal message for each but the last, whose outcome the final state carries with the whole journal', async () => {
    const jsm = await jetstreamManager(nc);
    const before = (await jsm.streams.info(names.journalStream)).state.messages;
    const { invocationId } = await client.submit(longRun, { steps: 25 });
    const state = await client.waitForResult(invocationId);
    const after = (await jsm.streams.info(names.journalStream)).state.messages;
    expect(state.status).toBe('completed');
    expect(after - before).toBe(24);
    expect(state.journal).toHaveLength(25);
    expect(state.journalLength).toBe(25);
    expect(decodeJson(state.currentState)).toBe(300);
  });

  it('completes a workflow of 10,000 steps', async () => {
    const { invocationId } = await client.submit(longRun, { steps: 10_000 });
    const state = await client.waitForResult(invocationId, { timeoutMs: 170_000 });
    expect(state.status).toBe('completed');
    expect(state.journalLength).toBe(10_000);
    expect(decodeJson(state.currentState)).toBe((10_000 * 9_999) / 2);
    expect(state.journal.length).toBeLessThanOrEqual(10_000);
    expect(state.journalSubject).toBe(`${names.journalSubject}.${invocationId}`);
  }, 180_000);

  it('runs the same invocation ID once however often it is submitted', async () => {
    const name = `dup-${Date.now()}`;
    const id = `dup-${Math.random().toString(36).slice(2)}`;
    const first = await client.submit(hello, { name }, { invocationId: id });
    const second = await client.submit(hello, { name }, { invocationId: id });
    expect(first.duplicate).toBe(false);
    expect(second.duplicate).toBe(true);
    await client.waitForResult(id);
    // Past the stream's duplicate window the state catches it: force that path with a new message ID.
    const js = jetstream(nc);
    const again = create(CommandSchema, { invocationId: id, handler: 'hello', args: new TextEncoder().encode(JSON.stringify({ name })), partitionKey: 'default' });
    await js.publish(`${names.commandsSubject}.default`, toBinary(CommandSchema, again), { msgID: `${id}-again` });
    const marker = await client.invoke(hello, { name: `${name}-marker` });
    expect(marker).toContain('marker');
    expect(service.calls.get(name)).toBe(1);
  });

  it('reads no state on the way of an invocation whose ID its client made, and reads it for an ID given', async () => {
    // Every read of a state, from the leader or direct, as the server receives it.
    const reads: string[] = [];
    const bucket = `KV_${names.stateBucket}`;
    const subs = [nc.subscribe(`$JS.API.DIRECT.GET.${bucket}.>`), nc.subscribe(`$JS.API.STREAM.MSG.GET.${bucket}`)];
    for (const sub of subs) void (async () => { for await (const m of sub) reads.push(`${m.subject} ${m.string()}`); })();
    await nc.flush();
    const fresh = await client.submitAndWait(hello, { name: 'fresh' });
    const given = await client.submitAndWait(hello, { name: 'given' }, { invocationId: `given-${Math.random().toString(36).slice(2)}` });
    // The marker's own reads show every read before it has reached our subscriptions.
    const marker = await client.submitAndWait(hello, { name: 'marker' }, { invocationId: `marker-${Math.random().toString(36).slice(2)}` });
    await expect.poll(() => reads.filter((r) => r.includes(marker.invocationId)).length).toBeGreaterThanOrEqual(2);
    for (const sub of subs) sub.unsubscribe();
    expect([fresh.state.status, given.state.status]).toEqual(['completed', 'completed']);
    expect(reads.filter((r) => r.includes(fresh.invocationId))).toEqual([]);
    // The processor's look before it runs, and the waiting client's.
    expect(reads.filter((r) => r.includes(given.invocationId)).length).toBeGreaterThanOrEqual(2);
  });

  it('announces the outcome to the submitting client’s one reply subscription, and on the invocation’s own subject', async () => {
    const heard: string[] = [];
    const subs = [nc.subscribe(`${names.resultSubject}.to.>`), nc.subscribe(`${names.resultSubject}.*`)];
    for (const sub of subs) void (async () => { for await (const m of sub) heard.push(m.subject); })();
    await nc.flush();
    const first = await client.submitAndWait(hello, { name: 'first' });
    const second = await client.submitAndWait(hello, { name: 'second' });
    const given = await client.submitAndWait(hello, { name: 'given' }, { invocationId: `given-${Math.random().toString(36).slice(2)}` });
    await expect.poll(() => heard.filter((h) => h.endsWith(given.invocationId)).length).toBe(1);
    for (const sub of subs) sub.unsubscribe();
    const to = (id: string) => heard.filter((h) => h.startsWith(`${names.resultSubject}.to.`) && h.endsWith(`.${id}`));
    // Both to the same subscription of this client: one prefix.
    expect([to(first.invocationId).length, to(second.invocationId).length]).toEqual([1, 1]);
    expect(to(first.invocationId)[0]!.replace(first.invocationId, '')).toBe(to(second.invocationId)[0]!.replace(second.invocationId, ''));
    expect(heard).toContain(`${names.resultSubject}.${first.invocationId}`);
    // An ID given by the caller, which another client may submit too: on its own subject only.
    expect(to(given.invocationId)).toEqual([]);
    // What is announced is the state as stored, its status history ending with the end.
    for (const { invocationId, state } of [first, given]) {
      expect(state.statusHistory.map((change) => change.status)).toEqual(['running', 'completed']);
      expect(state).toEqual((await client.getState(invocationId))!);
    }
  });

  it('fails an unknown handler at once with the reason', async () => {
    const { invocationId } = await client.submit('no_such_workflow', {});
    const state = await client.waitForResult(invocationId, { timeoutMs: 10_000 });
    expect(state.status).toBe('failed');
    expect(state.error).toBe('handler not found: no_such_workflow');
  });

  it('retries a failed invocation with the same input under a new ID linked to the old one', async () => {
    const { invocationId } = await client.submit('no_such_workflow', { n: 7 });
    await client.waitForResult(invocationId, { timeoutMs: 10_000 });
    const retry = await client.retry(invocationId);
    expect(retry.invocationId).not.toBe(invocationId);
    const state = await client.waitForResult(retry.invocationId, { timeoutMs: 10_000 });
    expect(state.retryOf).toBe(invocationId);
    expect(decodeJson(state.input)).toEqual({ n: 7 });
  });

  it('starts the invocations of one key in submission order and runs other keys alongside', async () => {
    events.length = 0;
    const submitted = [];
    for (let n = 0; n < 4; n++) {
      for (const key of ['a', 'b']) submitted.push(await client.submit(ordered, { key, n }, { partitionKey: `order-${key}` }));
    }
    await Promise.all(submitted.map((s) => client.waitForResult(s.invocationId)));
    for (const key of ['a', 'b']) {
      const mine = events.filter((e) => e.includes(` ${key}:`));
      expect(mine).toEqual([0, 1, 2, 3].flatMap((n) => [`start ${key}:${n}`, `end ${key}:${n}`]));
    }
    // Keys overlap: some start of one key comes between a start and end of the other.
    const firstEndA = events.indexOf('end a:0');
    expect(events.slice(0, firstEndA).some((e) => e.startsWith('start b:'))).toBe(true);
  });

  it('moves a command that does not decode to the dead-letter stream, with the reason', async () => {
    const jsm = await jetstreamManager(nc);
    const before = (await jsm.streams.info(names.deadLetterStream)).state.last_seq;
    const js = jetstream(nc);
    await js.publish(`${names.commandsSubject}.garbage`, new Uint8Array([0xff, 0xff, 0xff, 0x01]));
    // The next message stored in the dead-letter stream, waited for with a deadline.
    const consumer = await js.consumers.get(names.deadLetterStream, { opt_start_seq: before + 1 });
    const dead = await consumer.next({ expires: 10_000 });
    expect(dead?.seq).toBe(before + 1);
    expect(dead?.headers?.get('Durable-Reason')).toMatch(/not a durable.Command|no handler/);
    expect(dead?.headers?.get('Durable-Original-Subject')).toBe(`${names.commandsSubject}.garbage`);
  });
});

describe('state reads', () => {
  it('asks the bucket\'s leader when a direct get finds no state, as a replica behind the write it ended with does', async () => {
    const { invocationId } = await client.submitAndWait(hello, { name: 'leader' });
    const kvm = new Kvm(nc);
    // Standing for a replica that has not applied the invocation's one write yet: a bucket without it, read with direct gets.
    const behind = await kvm.create(`${namespace}_behind_${Math.random().toString(36).slice(2)}`, { replicas: 3, allow_direct: true });
    try {
      const leader = await kvm.open(names.stateBucket, { allow_direct: false });
      expect(await new NatsStateStore(behind).get(invocationId)).toBeNull();
      const found = await new NatsStateStore(behind, undefined, undefined, leader).get(invocationId);
      expect(found?.state.status).toBe('completed');
      expect(equals(ExecutionStateSchema, found!.state, (await client.getState(invocationId))!)).toBe(true);
    } finally {
      await behind.destroy();
    }
  });
});

describe('journal fencing', () => {
  it('lets only one of two writers append after the same entry', async () => {
    const js = jetstream(nc);
    const store = new NatsJournalStore(js, await jetstreamManager(nc), names);
    const id = `fence-${Math.random().toString(36).slice(2)}`;
    const first = await store.open(id, { fresh: true });
    await first.append(create(JournalEntrySchema, { stepNumber: 0, stepType: 'RUN:a' }));
    const a = await store.open(id);
    const b = await store.open(id);
    expect(a.entries).toHaveLength(1);
    await a.append(create(JournalEntrySchema, { stepNumber: 1, stepType: 'RUN:a' }));
    await expect(b.append(create(JournalEntrySchema, { stepNumber: 1, stepType: 'RUN:b' }))).rejects.toBeInstanceOf(FencedError);
    await expect(first.append(create(JournalEntrySchema, { stepNumber: 1, stepType: 'RUN:c' }))).rejects.toBeInstanceOf(FencedError);
    expect((await store.read(id)).entries.map((e) => e.stepType)).toEqual(['RUN:a', 'RUN:a']);
  });
});
