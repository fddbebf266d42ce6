import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { CommandKind, CommandSchema, ExecutionStateSchema, JournalEntrySchema, type Command, type ExecutionState, type JournalEntry } from '../gen/durable/durable_pb.js';
import { FencedError, PausedError, RetryableError, ServiceCallError, TerminalError } from '../errors.js';
import { silentLogger } from '../logger.js';
import type { CallOptions, ServiceInvoker } from '../services/service-invoker.js';
import { decodeJson, encodeJson } from './codec.js';
import { Executor } from './executor.js';
import { MemoryAwakeableStore, MemoryJournalStore, MemoryKeyedStateStore, MemoryStateStore } from './memory-stores.js';
import { defineWorkflow, WorkflowRegistry, type AnyWorkflow } from './workflow.js';
import type { AwakeableStore, InvocationGateway, JournalStore, KeyedStateStore, RetentionStore, StateStore, StateWriteOptions, TimerRequest, TimerScheduler } from './stores.js';

/** Records timers instead of keeping them. */
class RecordedTimers implements TimerScheduler {
  readonly timers: TimerRequest[] = [];
  async schedule(timer: TimerRequest): Promise<void> {
    this.timers.push(timer);
  }
}

/** A point a test waits for: `reached` resolves once `open` is called. */
function latch(): { reached: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const reached = new Promise<void>((resolve) => (open = resolve));
  return { reached, open };
}

/** An invoker that answers from a function and records every call. */
class FakeServices implements ServiceInvoker {
  readonly calls: Array<{ target: string; request: unknown; key: string | undefined }> = [];
  constructor(private readonly answer: (target: string, request: unknown, n: number) => unknown = (_t, r) => r) {}

  async call(service: string, method: string, request: unknown, options?: CallOptions): Promise<unknown> {
    const target = `${service}.${method}`;
    this.calls.push({ target, request, key: options?.metadata?.['idempotency-key'] });
    return this.answer(target, request, this.calls.length);
  }

  close(): void {}
}

function command(handler: string, args: unknown = {}, id = `inv-${Math.random().toString(36).slice(2)}`): Command {
  return create(CommandSchema, { invocationId: id, handler, args: encodeJson(args), partitionKey: 'default' });
}

function setup(workflows: AnyWorkflow[], services: ServiceInvoker = new FakeServices(), maxAttempts = 3) {
  const states = new MemoryStateStore();
  const journals = new MemoryJournalStore();
  const executor = new Executor({
    workflows: new WorkflowRegistry(workflows),
    states,
    journals,
    services,
    logger: silentLogger(),
    maxAttempts,
  });
  return { states, journals, executor };
}

const greetThree = defineWorkflow<{ names: string[] }, string[]>('greet_three', async (ctx, { names }) => {
  const out: string[] = [];
  for (const name of names) {
    const res = await ctx.call<{ name: string }>('HelloService', 'SayHello', { name });
    out.push(res.name);
  }
  return out;
});

describe('executor', () => {
  it('lets an ended invocation go by itself only when it left nothing but its state, else schedules its purge', async () => {
    const expiring = new Map<string, number | undefined>();
    class SpiedStates extends MemoryStateStore {
      override async create(state: ExecutionState, options?: StateWriteOptions): Promise<number> {
        expiring.set(state.invocationId, options?.expiresInMs);
        return super.create(state);
      }
      override async update(state: ExecutionState, revision: number, previous?: ExecutionState, options?: StateWriteOptions): Promise<number> {
        expiring.set(state.invocationId, options?.expiresInMs);
        return super.update(state, revision);
      }
    }
    const purged: string[] = [];
    const retention: RetentionStore = {
      expiresStates: true,
      schedulePurge: async (target) => void purged.push(target.invocationId),
      purge: async () => undefined,
    };
    // A journal whose entries may take 18,000 bytes: a state carrying two of 1,500 is over that (room is kept for its other fields).
    const inner = new MemoryJournalStore();
    const journals: JournalStore = {
      open: async (id, options) => Object.assign(Object.create(await inner.open(id, options)) as object, { maxEntryBytes: 18_000 }) as Awaited<ReturnType<JournalStore['open']>>,
      location: (id) => inner.location(id),
    };
    const big = 'x'.repeat(1_500);
    const one = defineWorkflow<unknown, number>('one', async (ctx) => ctx.run('a', () => 1));
    const two = defineWorkflow<unknown, number>('two', async (ctx) => (await ctx.run('a', () => 1)) + (await ctx.run('b', () => 2)));
    const large = defineWorkflow<unknown, string>('large', async (ctx) => ctx.run('a', () => big));
    const executor = new Executor({
      workflows: new WorkflowRegistry([one, two, large]),
      states: new SpiedStates(),
      journals,
      services: new FakeServices(),
      logger: silentLogger(),
      retention,
      retentionMs: 60_000,
    });
    const run = async (handler: string, delivery: number) => {
      const cmd = command(handler);
      const outcome = await executor.execute(cmd, { delivery });
      expect(outcome.kind).toBe('ended');
      if (outcome.kind === 'ended') await outcome.removal;
      return cmd.invocationId;
    };
    const alone = await run('one', 1);
    // A step in the journal stream; its last outcome too large to ride in the state; a second delivery.
    const others = [await run('two', 1), await run('large', 1), await run('one', 2)];
    expect(expiring.get(alone)).toBe(60_000);
    expect(purged).not.toContain(alone);
    for (const id of others) expect(expiring.get(id), id).toBeUndefined();
    expect(purged).toEqual(others);
  });

  it('runs a workflow, journals one entry per step and writes the final state with the journal, the last step\'s outcome in it alone', async () => {
    const services = new FakeServices();
    const { states, journals, executor } = setup([greetThree], services);
    const cmd = command('greet_three', { names: ['a', 'b', 'c'] });

    const outcome = await executor.execute(cmd);

    expect(outcome.kind).toBe('ended');
    const stored = await states.get(cmd.invocationId);
    expect(stored?.state.status).toBe('completed');
    expect(decodeJson(stored!.state.currentState)).toEqual(['a', 'b', 'c']);
    expect(stored!.state.journal.map((e) => e.stepType)).toEqual(['HelloService.SayHello', 'HelloService.SayHello', 'HelloService.SayHello']);
    expect(stored!.state.journalLength).toBe(3);
    // One durable write per step: two appends, then the final state, which carries the third.
    expect(journals.appends).toBe(2);
    expect(services.calls.map((c) => c.key)).toEqual([0, 1, 2].map((n) => `${cmd.invocationId}:${n}`));
  });

  it('replays journaled steps without calling the service again after an interrupted run', async () => {
    const controller = new AbortController();
    const services = new FakeServices((_t, request, n) => {
      if (n === 2) controller.abort();
      return request;
    });
    const { states, executor } = setup([greetThree], services);
    const cmd = command('greet_three', { names: ['a', 'b', 'c'] });

    const first = await executor.execute(cmd, { signal: controller.signal });
    expect(first.kind).toBe('interrupted');
    expect(services.calls).toHaveLength(2);

    const second = await executor.execute(cmd);
    expect(second.kind).toBe('ended');
    expect(services.calls.map((c) => (c.request as { name: string }).name)).toEqual(['a', 'b', 'c']);
    const stored = await states.get(cmd.invocationId);
    expect(decodeJson(stored!.state.currentState)).toEqual(['a', 'b', 'c']);
    expect(stored!.state.attempt).toBe(1);
  });

  it('runs an ended invocation only once', async () => {
    const services = new FakeServices();
    const { executor } = setup([greetThree], services);
    const cmd = command('greet_three', { names: ['a'] });
    await executor.execute(cmd);
    const again = await executor.execute(cmd);
    expect(again.kind).toBe('already-ended');
    // Also when it looks like a first delivery (a resubmission past the duplicate window).
    const resubmitted = await executor.execute(cmd, { firstDelivery: true });
    expect(resubmitted.kind).toBe('already-ended');
    expect(services.calls).toHaveLength(1);
  });

  describe('a first delivery runs before its state is written', () => {
    /** A state store that records every write's status. */
    class CountedStates extends MemoryStateStore {
      readonly writes: string[] = [];
      reads = 0;
      #created: () => void = () => undefined;
      /** Settles at the first create. */
      readonly created = new Promise<void>((resolve) => (this.#created = resolve));
      override async get(invocationId: string): ReturnType<MemoryStateStore['get']> {
        this.reads++;
        return super.get(invocationId);
      }
      override async create(state: ExecutionState): Promise<number> {
        this.writes.push(`create ${state.status}`);
        this.#created();
        return super.create(state);
      }
      override async update(state: ExecutionState, revision: number): Promise<number> {
        this.writes.push(`update ${state.status}`);
        return super.update(state, revision);
      }
    }

    function counted(workflows: AnyWorkflow[], services: ServiceInvoker = new FakeServices()) {
      const states = new CountedStates();
      const awakeables = new MemoryAwakeableStore();
      const executor = new Executor({ workflows: new WorkflowRegistry(workflows), states, journals: new MemoryJournalStore(), services, awakeables, logger: silentLogger() });
      return { states, executor };
    }

    it('writes one state when it ends in one go without appending: the final one; one that appends writes it before its first append', async () => {
      const { states, executor } = counted([greetThree]);
      const cmd = command('greet_three', { names: ['a'] });
      expect((await executor.execute(cmd, { startSequence: 3n, delivery: 1, firstDelivery: true })).kind).toBe('ended');
      expect(states.writes).toEqual(['create completed']);
      const stored = (await states.get(cmd.invocationId))!.state;
      expect([stored.startSequence, stored.runDelivery, stored.attempt]).toEqual([3n, 1, 1]);
      // The first call's outcome is appended before the second call: the state fences that append.
      states.writes.length = 0;
      expect((await executor.execute(command('greet_three', { names: ['a', 'b'] }), { startSequence: 4n, delivery: 1, firstDelivery: true })).kind).toBe('ended');
      expect(states.writes).toEqual(['create running', 'update completed']);
    });

    it('writes its state, then appends, when its final state cannot carry its last outcome', async () => {
      const states = new MemoryStateStore();
      const journals = new MemoryJournalStore();
      const writes: string[] = [];
      const create = states.create.bind(states);
      const update = states.update.bind(states);
      states.create = async (state) => (writes.push(`create ${state.status} after ${journals.appends} appends`), create(state));
      states.update = async (state, revision) => (writes.push(`update ${state.status} after ${journals.appends} appends`), update(state, revision));
      const long = defineWorkflow<unknown, number>('long_outcome', async (ctx) => (await ctx.run('a', () => 'x'.repeat(100))).length);
      const executor = new Executor({ workflows: new WorkflowRegistry([long]), states, journals, services: new FakeServices(), logger: silentLogger(), journalInlineBytes: 10 });
      const cmd = command('long_outcome');
      expect((await executor.execute(cmd, { startSequence: 1n, delivery: 1, firstDelivery: true })).kind).toBe('ended');
      expect(writes).toEqual(['create running after 0 appends', 'update completed after 1 appends']);
      expect(journals.entries(cmd.invocationId).map((e) => e.stepType)).toEqual(['RUN:a']);
    });

    it('appends what it holds when its set values take its final state past the limit', async () => {
      const states = new MemoryStateStore();
      const inner = new MemoryJournalStore();
      // A state may take 18,000 bytes (room is kept for its fields): the output and the set's journal entry fit; with the set value itself, they do not.
      const journals: JournalStore = {
        open: async (id, options) => Object.assign(Object.create(await inner.open(id, options)) as object, { maxEntryBytes: 18_000 }) as Awaited<ReturnType<JournalStore['open']>>,
        location: (id) => inner.location(id),
      };
      const setter = defineWorkflow<unknown, string>('big_setter', async (ctx) => {
        await ctx.set('k', 'v'.repeat(700));
        return 'o'.repeat(700);
      });
      const executor = new Executor({ workflows: new WorkflowRegistry([setter]), states, journals, services: new FakeServices(), logger: silentLogger() });
      const cmd = command('big_setter');
      expect((await executor.execute(cmd, { startSequence: 1n, delivery: 1, firstDelivery: true })).kind).toBe('ended');
      expect(inner.entries(cmd.invocationId).map((e) => e.stepType)).toEqual(['SET:k']);
    });

    it('reads no state first when its client made the ID just now, and is still dropped when the ID was taken', async () => {
      const services = new FakeServices();
      const { states, executor } = counted([greetThree], services);
      const cmd = command('greet_three', { names: ['a'] });
      expect((await executor.execute(cmd, { startSequence: 1n, delivery: 1, firstDelivery: true, freshId: true })).kind).toBe('ended');
      expect([states.reads, states.writes]).toEqual([0, ['create completed']]);
      // Not one its client made just now: looked up, and found.
      const other = command('greet_three', { names: ['b'] });
      await executor.execute(other, { startSequence: 2n, delivery: 1, firstDelivery: true });
      expect(states.reads).toBe(1);
      // A fresh ID that is taken all the same (a client's mistake): the run's write finds it.
      const taken = await executor.execute(cmd, { startSequence: 3n, delivery: 1, firstDelivery: true, freshId: true });
      expect(taken.kind).toBe('duplicate');
      expect((await states.get(cmd.invocationId))!.state.startSequence).toBe(1n);
    });

    it('writes its running state when it runs on, and builds its final state on it', async () => {
      let open: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (open = resolve));
      const slow = defineWorkflow<Record<string, never>, string>('slow', async (ctx) => ctx.run('wait', async () => (await gate, 'done')));
      const { states, executor } = counted([slow]);
      const cmd = command('slow');
      const run = executor.execute(cmd, { startSequence: 1n, delivery: 1, firstDelivery: true });
      // Written while the step is still running: the invocation is listed and can be cancelled.
      await states.created;
      expect((await states.get(cmd.invocationId))!.state.status).toBe('running');
      open();
      expect((await run).kind).toBe('ended');
      expect(states.writes).toEqual(['create running', 'update completed']);
    });

    it('writes its state before an awakeable it made can be handed out', async () => {
      const seen: Array<string | undefined> = [];
      let states: CountedStates;
      const handsOut = defineWorkflow<Record<string, never>, string>('hands_out', async (ctx) => {
        const awakeable = ctx.awakeable<string>();
        await ctx.run('hand out', async () => {
          seen.push((await states.get(ctx.invocationId))?.state.status);
          return awakeable.id;
        });
        return 'handed out';
      });
      const made = counted([handsOut]);
      states = made.states;
      const cmd = command('hands_out');
      expect((await made.executor.execute(cmd, { startSequence: 1n, delivery: 1, firstDelivery: true })).kind).toBe('ended');
      expect(seen).toEqual(['running']);
    });

    it('keeps the outcome of a step that finished as the run was stopped: the next run does not do it again', async () => {
      let runs = 0;
      let open: () => void = () => undefined;
      let reached: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (open = resolve));
      const atGate = new Promise<void>((resolve) => (reached = resolve));
      const charged = defineWorkflow<Record<string, never>, string>('charged', async (ctx) => {
        await ctx.run('charge', async () => {
          runs++;
          reached();
          await gate;
          return 'charged';
        });
        // Its check sees the stop: the outcome above is held, not yet appended.
        await ctx.sleep(10);
        return 'done';
      });
      const journals = new MemoryJournalStore();
      const executor = new Executor({ workflows: new WorkflowRegistry([charged]), states: new MemoryStateStore(), journals, services: new FakeServices(), logger: silentLogger() });
      const cmd = command('charged');
      const stop = new AbortController();
      const first = executor.execute(cmd, { signal: stop.signal, startSequence: 1n, delivery: 1, firstDelivery: true });
      await atGate;
      stop.abort();
      open();
      expect((await first).kind).toBe('interrupted');
      expect(journals.entries(cmd.invocationId).map((e) => e.stepType)).toEqual(['RUN:charge']);
      expect((await executor.execute(cmd, { startSequence: 1n, delivery: 2 })).kind).toBe('ended');
      expect(runs).toBe(1);
    });

    it('drops a second start command that finds the invocation only when it writes', async () => {
      const services = new FakeServices();
      const { states, executor } = counted([greetThree], services);
      const cmd = command('greet_three', { names: ['a'] });
      // The first start's run is under way on another processor, its state not yet visible here.
      const hidden = executor.execute(cmd, { startSequence: 1n, delivery: 1, firstDelivery: true });
      const second = executor.execute(cmd, { startSequence: 2n, delivery: 1, firstDelivery: true });
      const outcomes = (await Promise.all([hidden, second])).map((o) => o.kind).sort();
      expect(outcomes).toEqual(['duplicate', 'ended']);
      expect((await states.get(cmd.invocationId))!.state.status).toBe('completed');
    });
  });

  it('fails an unknown handler at once with a clear reason', async () => {
    const { states, executor } = setup([]);
    const cmd = command('nope');
    const outcome = await executor.execute(cmd);
    expect(outcome.kind).toBe('ended');
    const stored = await states.get(cmd.invocationId);
    expect(stored?.state.status).toBe('failed');
    expect(stored?.state.error).toBe('handler not found: nope');
  });

  it('stops a replay that asks for a different step, naming both, and leaves the journal alone', async () => {
    const { states, journals, executor } = setup([
      defineWorkflow('changed', async (ctx) => ctx.call('TicketService', 'Reserve', { ticketId: 't' })),
    ]);
    const cmd = command('changed');
    const log = await journals.open(cmd.invocationId);
    await log.append(create(JournalEntrySchema, { stepNumber: 0, stepType: 'HelloService.SayHello', response: encodeJson({}) }));
    // A previous run took the invocation up and crashed.
    await states.create({ ...freshState(cmd), status: 'running', attempt: 1 });

    const outcome = await executor.execute(cmd);

    expect(outcome.kind).toBe('ended');
    const stored = await states.get(cmd.invocationId);
    expect(stored?.state.status).toBe('failed');
    expect(stored?.state.error).toContain('HelloService.SayHello');
    expect(stored?.state.error).toContain('TicketService.Reserve');
    expect(journals.entries(cmd.invocationId)).toHaveLength(1);
  });

  it('abandons an invocation whose journal another writer appended to', async () => {
    const { journals, executor } = setup([
      defineWorkflow('racy', async (ctx) => {
        await ctx.run('mine', () => 1);
        const other = await journals.open(ctx.invocationId);
        await other.append(create(JournalEntrySchema, { stepNumber: 0, stepType: 'RUN:other' }));
        // Its outcome above is appended before this step's side effect, and refused.
        return ctx.run('next', () => 2);
      }),
    ]);
    const outcome = await executor.execute(command('racy'));
    expect(outcome.kind).toBe('fenced');
  });

  it('retries transient failures without journaling them, and journals terminal ones as catchable errors', async () => {
    const services = new FakeServices((target, request, n) => {
      if (target === 'HelloService.SayHello' && n < 3) throw new RetryableError('UNAVAILABLE');
      if (target === 'TicketService.Reserve') throw new ServiceCallError('TicketService', 'Reserve', 5, 'no such ticket');
      return request;
    });
    const workflow = defineWorkflow(
      'mixed',
      async (ctx) => {
        const hello = await ctx.call('HelloService', 'SayHello', { name: 'x' });
        try {
          await ctx.call('TicketService', 'Reserve', { ticketId: 't' });
          return 'unreachable';
        } catch (err) {
          return { hello, caught: err instanceof ServiceCallError ? err.status : -1 };
        }
      },
      { retry: { initialBackoffMs: 1, maxBackoffMs: 2 } },
    );
    const { states, executor } = setup([workflow], services);
    const cmd = command('mixed');

    await executor.execute(cmd);

    const stored = await states.get(cmd.invocationId);
    expect(decodeJson(stored!.state.currentState)).toEqual({ hello: { name: 'x' }, caught: 5 });
    const [first, second] = stored!.state.journal;
    expect(first?.attempts).toBe(3);
    expect(first?.error).toBe('');
    expect(second?.error).toBe('no such ticket');
    expect(second?.errorCode).toBe(5);
  });

  it('replays run, now, random and uuid with the values of the first run', async () => {
    let sideEffects = 0;
    const controller = new AbortController();
    const workflow = defineWorkflow('values', async (ctx) => {
      const values = [await ctx.run('effect', () => ++sideEffects), await ctx.now(), await ctx.random(), await ctx.uuid()];
      controller.abort();
      await ctx.run('after', () => 0);
      return values;
    });
    const { states, executor } = setup([workflow]);
    const cmd = command('values');
    expect((await executor.execute(cmd, { signal: controller.signal })).kind).toBe('interrupted');
    await executor.execute(cmd);
    const stored = await states.get(cmd.invocationId);
    const values = decodeJson<unknown[]>(stored!.state.currentState);
    expect(values[0]).toBe(1);
    expect(sideEffects).toBe(1);
    expect(stored!.state.journal.slice(0, 4).map((e) => decodeJson(e.response))).toEqual(values);
  });

  it('fails an invocation with the reason once it used up its attempts', async () => {
    const { states, executor } = setup([greetThree], new FakeServices(), 2);
    const cmd = command('greet_three', { names: ['a'] });
    await states.create({ ...freshState(cmd), status: 'running', attempt: 2 });
    await executor.execute(cmd);
    const stored = await states.get(cmd.invocationId);
    expect(stored?.state.status).toBe('failed');
    expect(stored?.state.error).toMatch(/gave up after 2 attempts/);
  });

  it('fails with the thrown error when the workflow throws', async () => {
    const { states, executor } = setup([
      defineWorkflow('throws', async () => {
        throw new TerminalError('bad order');
      }),
    ]);
    const cmd = command('throws');
    await executor.execute(cmd);
    expect((await states.get(cmd.invocationId))?.state.error).toBe('bad order');
  });

  it('keeps at most the inline limit of journal in the final state and says how long it is', async () => {
    const states = new MemoryStateStore();
    const executor = new Executor({
      workflows: new WorkflowRegistry([
        defineWorkflow('long', async (ctx) => {
          for (let i = 0; i < 200; i++) await ctx.run('step', () => 'x'.repeat(100));
        }),
      ]),
      states,
      journals: new MemoryJournalStore(),
      services: new FakeServices(),
      logger: silentLogger(),
      journalInlineBytes: 4_096,
    });
    const cmd = command('long');
    await executor.execute(cmd);
    const stored = await states.get(cmd.invocationId);
    expect(stored?.state.journalLength).toBe(200);
    expect(stored!.state.journal.length).toBeGreaterThan(10);
    expect(stored!.state.journal.length).toBeLessThan(200);
  });
});

function freshState(cmd: Command) {
  return create(ExecutionStateSchema, {
    invocationId: cmd.invocationId,
    handler: cmd.handler,
    input: cmd.args,
    partitionKey: cmd.partitionKey,
    currentStep: -1,
  });
}

describe('durable sleep', () => {
  const napper = defineWorkflow<{ ms: number }, string>('napper', async (ctx, { ms }) => {
    const before = await ctx.run('before', () => 'b');
    await ctx.sleep(ms);
    const after = await ctx.run('after', () => 'a');
    return before + after;
  });

  function sleepSetup(workflow: AnyWorkflow = napper, journalInlineBytes?: number, invocations?: InvocationGateway) {
    const states = new MemoryStateStore();
    const journals = new MemoryJournalStore();
    const timers = new RecordedTimers();
    const executor = new Executor({
      workflows: new WorkflowRegistry([workflow]),
      states,
      journals,
      services: new FakeServices(),
      logger: silentLogger(),
      timers,
      ...(journalInlineBytes ? { journalInlineBytes } : {}),
      ...(invocations ? { invocations } : {}),
    });
    return { states, journals, timers, executor };
  }

  it('has a first delivery that suspends create its state suspended, holding its outcomes alone: nothing is appended', async () => {
    const { states, journals, executor } = sleepSetup();
    const cmd = command('napper', { ms: 60_000 });
    const writes: string[] = [];
    const create = states.create.bind(states);
    const update = states.update.bind(states);
    states.create = async (state) => (writes.push(`create ${state.status}`), create(state));
    states.update = async (state, revision) => (writes.push(`update ${state.status}`), update(state, revision));

    expect((await executor.execute(cmd, { startSequence: 1n, delivery: 1, firstDelivery: true })).kind).toBe('suspended');
    const suspended = (await states.get(cmd.invocationId))!.state;
    expect(suspended.status).toBe('suspended');
    expect(suspended.statusHistory.map((change) => change.status)).toEqual(['running', 'suspended']);
    // The step before the sleep and the sleep's start, in the state alone: it names no stream.
    expect(suspended.journal.map((e) => e.stepType)).toEqual(['RUN:before', 'SLEEP']);
    expect(suspended.journalStream).toBe('');
    expect(journals.entries(cmd.invocationId)).toEqual([]);
    // The suspension wrote it, once: no state before it.
    expect(writes).toEqual(['create suspended']);
  });

  it('suspends on a long sleep with a timer scheduled, and finishes once resumed after it is due', async () => {
    const { states, journals, timers, executor } = sleepSetup();
    const cmd = command('napper', { ms: 60_000 });

    const first = await executor.execute(cmd);

    expect(first.kind).toBe('suspended');
    expect((await states.get(cmd.invocationId))?.state.status).toBe('suspended');
    expect(timers.timers).toHaveLength(1);
    expect(timers.timers[0]?.step).toBe(1);
    expect(timers.timers[0]!.wakeAtMs).toBeGreaterThan(Date.now() + 50_000);

    // Resumed too early (a duplicate wake-up): it suspends again and writes no entry.
    const early = await executor.execute(cmd);
    expect(early.kind).toBe('suspended');
    expect(journals.entries(cmd.invocationId)).toHaveLength(0);

    // Make the timer due by rewriting the journaled wake time in the suspended state, which
    // holds the journal alone, then resume.
    const suspended = (await states.get(cmd.invocationId))!;
    expect(suspended.state.journalLastSequence).toBe(0n);
    suspended.state.journal[1]!.request = encodeJson({ wakeAtMs: Date.now() - 1 });
    await states.update(suspended.state, suspended.revision);
    const resumed = await executor.execute(cmd);
    expect(resumed.kind).toBe('ended');
    const stored = await states.get(cmd.invocationId);
    expect(stored?.state.status).toBe('completed');
    expect(decodeJson(stored!.state.currentState)).toBe('ba');
    expect(stored!.state.journal.map((e) => e.stepType)).toEqual(['RUN:before', 'SLEEP', 'SLEEP', 'RUN:after']);
  });

  /** Makes a suspended napper's timer due, in its journal and in the copy its state holds. */
  async function makeDue(states: MemoryStateStore, journals: MemoryJournalStore, invocationId: string): Promise<void> {
    const due = encodeJson({ wakeAtMs: Date.now() - 1 });
    const streamed = journals.entries(invocationId)[1];
    if (streamed) streamed.request = due;
    const suspended = (await states.get(invocationId))!;
    suspended.state.journal[1]!.request = due;
    await states.update(suspended.state, suspended.revision);
  }

  /** Sleeps, then only reads the clock before it returns: nothing outside its state after the sleep. */
  const waker = defineWorkflow<{ ms: number }, string>('waker', async (ctx, { ms }) => {
    const before = await ctx.run('before', () => 'b');
    await ctx.sleep(ms);
    await ctx.now();
    return before;
  });

  /** An executor of `workflow`, and a suspended invocation of it due now. */
  async function dueSleeper(workflow: AnyWorkflow, journalInlineBytes?: number, invocations?: InvocationGateway) {
    const { states, journals, executor } = sleepSetup(workflow, journalInlineBytes, invocations);
    const cmd = command(workflow.name, { ms: 60_000 });
    expect((await executor.execute(cmd, { startSequence: 1n, delivery: 1, firstDelivery: true })).kind).toBe('suspended');
    await makeDue(states, journals, cmd.invocationId);
    const writes: string[] = [];
    const update = states.update.bind(states);
    states.update = async (state, revision) => (writes.push(`update ${state.status} after ${journals.appends} appends`), update(state, revision));
    return { states, journals, executor, writes, cmd, wake: create(CommandSchema, { ...cmd, kind: CommandKind.RESUME }) };
  }

  it('resumes a suspended invocation woken by a command never run before with one state write when the run then only ends: its final one, on the state it found', async () => {
    const { states, journals, executor, writes, cmd, wake } = await dueSleeper(waker);
    expect((await executor.execute(wake, { startSequence: 2n, delivery: 1, resumeUnclaimed: true })).kind).toBe('ended');
    expect(writes).toEqual(['update completed after 0 appends']);
    const final = (await states.get(cmd.invocationId))!.state;
    expect(final.statusHistory.map((change) => change.status)).toEqual(['running', 'suspended', 'completed']);
    expect(final.journal.map((e) => e.stepType)).toEqual(['RUN:before', 'SLEEP', 'SLEEP', 'NOW']);
    // Its whole life in its states: nothing in a journal stream.
    expect(journals.entries(cmd.invocationId)).toEqual([]);
  });

  it('has a run resumed unclaimed claim the invocation before its first append or side effect', async () => {
    const { states, executor, writes, cmd, wake } = await dueSleeper(napper);
    expect((await executor.execute(wake, { startSequence: 2n, delivery: 1, resumeUnclaimed: true })).kind).toBe('ended');
    // The claim, then what the suspension held and the sleep's end appended before the step after it, then the end.
    expect(writes).toEqual(['update running after 0 appends', 'update completed after 3 appends']);
    expect(decodeJson((await states.get(cmd.invocationId))!.state.currentState)).toBe('ba');
  });

  it('has a run resumed unclaimed claim and append before its end when its final state cannot carry what it holds', async () => {
    const bulky = defineWorkflow<{ ms: number }, string>('bulky_waker', async (ctx, { ms }) => {
      const before = await ctx.run('before', () => 'b');
      await ctx.sleep(ms);
      await ctx.set('big', 'x'.repeat(2_000));
      return before;
    });
    const { states, journals, executor, writes, cmd, wake } = await dueSleeper(bulky, 1_000);
    expect((await executor.execute(wake, { startSequence: 2n, delivery: 1, resumeUnclaimed: true })).kind).toBe('ended');
    expect(writes).toEqual(['update running after 0 appends', 'update completed after 4 appends']);
    expect(journals.entries(cmd.invocationId).map((e) => e.stepType)).toEqual(['RUN:before', 'SLEEP', 'SLEEP', 'SET:big']);
    expect((await states.get(cmd.invocationId))!.state.journalLength).toBe(4);
  });

  it('has a run resumed unclaimed lose its end to any change of the state it found, even one that leaves it suspended as it was', async () => {
    const { states, executor, cmd, wake } = await dueSleeper(waker);
    const update = states.update.bind(states);
    let changed = false;
    states.update = async (state, revision) => {
      if (!changed && state.status === 'completed') {
        // Another run suspended it again meanwhile: the same status, owner, attempt and command.
        changed = true;
        const current = (await states.get(cmd.invocationId))!;
        await update(current.state, current.revision);
      }
      return update(state, revision);
    };
    expect((await executor.execute(wake, { startSequence: 2n, delivery: 1, resumeUnclaimed: true })).kind).toBe('fenced');
    expect((await states.get(cmd.invocationId))!.state.status).toBe('suspended');
  });

  it('lets only one of two unclaimed runs of the same wake-up (a consumer that lost its state delivers it again as new) end the invocation', async () => {
    const { states, journals, executor, cmd, wake } = await dueSleeper(waker);
    const outcomes = await Promise.all([1, 2].map(() => executor.execute(wake, { startSequence: 2n, delivery: 1, resumeUnclaimed: true })));
    expect(outcomes.map((o) => o.kind).sort()).toEqual(['ended', 'fenced']);
    const final = (await states.get(cmd.invocationId))!.state;
    expect(final.status).toBe('completed');
    expect(final.journal.map((e) => e.stepType)).toEqual(['RUN:before', 'SLEEP', 'SLEEP', 'NOW']);
    expect(journals.entries(cmd.invocationId)).toEqual([]);
  });

  it('takes over a run resumed unclaimed that stalled after its claim when its wake-up comes again, and the stalled run takes nothing', async () => {
    const gate = latch();
    const inAfter = latch();
    let runsOfAfter = 0;
    const stallable = defineWorkflow<{ ms: number }, string>('stallable_napper', async (ctx, { ms }) => {
      await ctx.run('before', () => 'b');
      await ctx.sleep(ms);
      return ctx.run('after', async () => {
        const n = runsOfAfter++;
        if (n === 0) {
          inAfter.open();
          await gate.reached;
        }
        return `a${n}`;
      });
    });
    const { states, journals, executor, cmd, wake } = await dueSleeper(stallable);

    // Resumed unclaimed: it claims, appends the sleep's end, then stalls in the step after it.
    const stalled = executor.execute(wake, { startSequence: 2n, delivery: 1, resumeUnclaimed: true });
    await inAfter.reached;
    expect((await states.get(cmd.invocationId))!.state.status).toBe('running');
    // Its wake-up comes back (the ack wait passed) to another run, which takes it over.
    expect((await executor.execute(wake, { startSequence: 2n, delivery: 2 })).kind).toBe('ended');
    gate.open();
    expect((await stalled).kind).toBe('fenced');
    const final = (await states.get(cmd.invocationId))!.state;
    expect(decodeJson(final.currentState)).toBe('a1');
    expect(final.journal.map((e) => e.stepType)).toEqual(['RUN:before', 'SLEEP', 'SLEEP', 'RUN:after']);
    expect(journals.entries(cmd.invocationId).map((e) => e.stepType)).toEqual(['RUN:before', 'SLEEP', 'SLEEP']);
  });

  /** Makes the first `n` journals opened from now on hang at their first append (a processor that stopped there); resolves `stopped[i]` when the i-th does. */
  function hangAppends(journals: MemoryJournalStore, n: number): Promise<void>[] {
    const signals: Array<() => void> = [];
    const stopped = Array.from({ length: n }, () => new Promise<void>((resolve) => signals.push(resolve)));
    const open = journals.open.bind(journals);
    let opened = 0;
    journals.open = async (id, options) => {
      const log = await open(id, options);
      if (opened >= n) return log;
      const signal = signals[opened++]!;
      return Object.assign(Object.create(log) as typeof log, { append: () => (signal(), new Promise<void>(() => undefined)) });
    };
    return stopped;
  }

  it('keeps what a suspension held alone through runs that claim it and stop before appending it, and takeovers of those: replayed, not run again', async () => {
    let runsOfBefore = 0;
    const counted = defineWorkflow<{ ms: number }, number>('counted_napper', async (ctx, { ms }) => {
      const before = await ctx.run('before', () => ++runsOfBefore);
      await ctx.sleep(ms);
      return before + (await ctx.run('after', () => 10));
    });
    const { states, journals, executor, cmd, wake } = await dueSleeper(counted);
    expect(journals.entries(cmd.invocationId)).toEqual([]);
    const stopped = hangAppends(journals, 2);
    // The wake-up resumes it unclaimed, claims before its step after the sleep, and stops at its first append.
    void executor.execute(wake, { startSequence: 2n, delivery: 1, resumeUnclaimed: true });
    await stopped[0];
    const claimed = (await states.get(cmd.invocationId))!.state;
    expect(claimed.status).toBe('running');
    // The claim keeps the journal the suspension held alone: no stream has it yet.
    expect(claimed.journal.map((e) => e.stepType)).toEqual(['RUN:before', 'SLEEP']);
    expect(journals.entries(cmd.invocationId)).toEqual([]);
    // Its wake-up comes back to a run that takes it over, and stops at its first append too.
    void executor.execute(wake, { startSequence: 2n, delivery: 2 });
    await stopped[1];
    expect((await states.get(cmd.invocationId))!.state.journal.map((e) => e.stepType)).toEqual(['RUN:before', 'SLEEP']);
    // The third run takes it over from that state, and ends it.
    expect((await executor.execute(wake, { startSequence: 2n, delivery: 3 })).kind).toBe('ended');
    const final = (await states.get(cmd.invocationId))!.state;
    expect(decodeJson(final.currentState)).toBe(11);
    expect(runsOfBefore).toBe(1);
    expect(final.journal.map((e) => e.stepType)).toEqual(['RUN:before', 'SLEEP', 'SLEEP', 'RUN:after']);
    // It appended what the suspension held before its own.
    expect(journals.entries(cmd.invocationId).map((e) => e.stepType).slice(0, 3)).toEqual(['RUN:before', 'SLEEP', 'SLEEP']);
  });

  it('has a wake-up that only replays and sleeps again write one state, its suspension, holding every outcome alone', async () => {
    const twice = defineWorkflow<{ ms: number }, number>('twice_napper', async (ctx, { ms }) => {
      const first = await ctx.now();
      await ctx.sleep(ms);
      await ctx.now();
      await ctx.sleep(ms);
      return first;
    });
    const { states, journals, executor, writes, cmd, wake } = await dueSleeper(twice);
    expect((await executor.execute(wake, { startSequence: 2n, delivery: 1, resumeUnclaimed: true })).kind).toBe('suspended');
    expect(writes).toEqual(['update suspended after 0 appends']);
    const again = (await states.get(cmd.invocationId))!;
    expect(again.state.journalStream).toBe('');
    expect(again.state.journal.map((e) => e.stepType)).toEqual(['NOW', 'SLEEP', 'SLEEP', 'NOW', 'SLEEP']);
    // The second sleep falls due: the next wake-up ends it, with one write again.
    again.state.journal[4]!.request = encodeJson({ wakeAtMs: Date.now() - 1 });
    await states.update(again.state, again.revision);
    writes.length = 0;
    expect((await executor.execute(wake, { startSequence: 3n, delivery: 1, resumeUnclaimed: true })).kind).toBe('ended');
    expect(writes).toEqual(['update completed after 0 appends']);
    expect(journals.entries(cmd.invocationId)).toEqual([]);
  });

  it('pauses a run resumed from what a suspension held alone with the journal it ran, not the copy its claim kept', async () => {
    const inSlow = latch();
    const gate = latch();
    const pausable = defineWorkflow<{ ms: number }, number>('pausable_napper', async (ctx, { ms }) => {
      await ctx.run('before', () => 1);
      await ctx.sleep(ms);
      await ctx.run('slow', async () => (inSlow.open(), await gate.reached, 2));
      return ctx.run('next', () => 3);
    });
    const { states, journals, executor, cmd, wake } = await dueSleeper(pausable);
    const controller = new AbortController();
    const run = executor.execute(wake, { startSequence: 2n, delivery: 1, resumeUnclaimed: true, signal: controller.signal });
    await inSlow.reached;
    const running = (await states.get(cmd.invocationId))!;
    await states.update({ ...running.state, pauseRequested: true }, running.revision);
    controller.abort(new PausedError());
    gate.open();
    expect((await run).kind).toBe('paused');
    const paused = (await states.get(cmd.invocationId))!.state;
    expect(paused.status).toBe('paused');
    const streamed = journals.entries(cmd.invocationId).map((e) => e.stepType);
    expect(streamed).toEqual(['RUN:before', 'SLEEP', 'SLEEP', 'RUN:slow']);
    expect(paused.journal.map((e) => e.stepType)).toEqual(streamed);
  });

  /** Resolves once a run's claim (a `running` state) is written. */
  function claimOf(states: MemoryStateStore): Promise<void> {
    return new Promise<void>((resolve) => {
      const update = states.update.bind(states);
      states.update = async (state, revision) => {
        const written = await update(state, revision);
        if (state.status === 'running') resolve();
        return written;
      };
    });
  }

  it('keeps what a suspension held alone when a paused run could neither append it nor carry its journal whole', async () => {
    let runsOfBefore = 0;
    let inGate = latch();
    let gate = latch();
    const bulky = defineWorkflow<{ ms: number }, number>('bulky_pausable', async (ctx, { ms }) => {
      await ctx.run('before', () => ++runsOfBefore);
      await ctx.sleep(ms);
      for (let i = 0; i < 4; i++) await ctx.set(`k${i}`, 'x'.repeat(100));
      inGate.open();
      await gate.reached;
      await ctx.now();
      return ctx.run('after', () => 1);
    });
    const { states, journals, executor, cmd, wake } = await dueSleeper(bulky, 200);
    let failing = false;
    const open = journals.open.bind(journals);
    journals.open = async (id, options) => {
      const log = await open(id, options);
      return Object.assign(Object.create(log) as typeof log, { append: (entry: JournalEntry) => (failing ? Promise.reject(new Error('timeout')) : log.append(entry)) });
    };
    // Resumed unclaimed; the run goes on past 500 ms, so its claim is written, with nothing appended.
    const claimWritten = claimOf(states);
    const controller = new AbortController();
    const run = executor.execute(wake, { startSequence: 2n, delivery: 1, resumeUnclaimed: true, signal: controller.signal });
    await inGate.reached;
    await claimWritten;
    // A pause is asked for, and the appends of the run's stop fail (the cluster does not answer).
    const running = (await states.get(cmd.invocationId))!;
    await states.update({ ...running.state, pauseRequested: true }, running.revision);
    failing = true;
    controller.abort(new PausedError());
    gate.open();
    expect((await run).kind).toBe('paused');
    expect(journals.entries(cmd.invocationId)).toEqual([]);
    // Resumed (as the client does), the appends work again: the step before the sleep is replayed.
    const paused = (await states.get(cmd.invocationId))!;
    await states.update({ ...paused.state, status: 'suspended' }, paused.revision);
    failing = false;
    inGate = latch();
    gate = latch();
    const again = executor.execute(wake, { startSequence: 3n, delivery: 1, resumeUnclaimed: true });
    // A run that lost what was held would run its first step again and sleep anew, never reaching the gate.
    await Promise.race([inGate.reached, again.then((outcome) => Promise.reject(new Error(`${outcome.kind} before the gate`)))]);
    gate.open();
    expect((await again).kind).toBe('ended');
    expect(runsOfBefore).toBe(1);
  });

  it('appends at its suspension what a takeover holds when its claim mark is in the stream, rather than holding it alone', async () => {
    let waiting = true;
    const gated = defineWorkflow<{ ms: number }, number>('gated_napper', async (ctx, { ms }) => {
      await ctx.run('before', () => 1);
      await ctx.sleep(ms);
      if (waiting) {
        waiting = false;
        await new Promise<never>(() => undefined); // the first resumed run stalls here, its claim written after 500 ms
      }
      await ctx.now();
      await ctx.sleep(ms);
      return 0;
    });
    const { states, journals, executor, cmd, wake } = await dueSleeper(gated);
    const claimWritten = claimOf(states);
    void executor.execute(wake, { startSequence: 2n, delivery: 1, resumeUnclaimed: true });
    await claimWritten;
    expect(journals.entries(cmd.invocationId)).toEqual([]);
    // A takeover's claim mark is a message in the journal stream (the in-memory store keeps none).
    const open = journals.open.bind(journals);
    journals.open = async (id, options) => {
      const log = await open(id, options);
      if (options?.claim === undefined) return log;
      return Object.defineProperty(Object.create(log) as typeof log, 'lastSequence', { get: () => log.lastSequence + 1 });
    };
    expect((await executor.execute(wake, { startSequence: 2n, delivery: 2 })).kind).toBe('suspended');
    const suspended = (await states.get(cmd.invocationId))!.state;
    expect(suspended.journalStream).not.toBe('');
    expect(journals.entries(cmd.invocationId).map((e) => e.stepType)).toEqual(['RUN:before', 'SLEEP', 'SLEEP', 'NOW', 'SLEEP']);
  });

  it('lets no other start of the same ID append beside a suspension that holds its journal alone', async () => {
    const inGate = latch();
    const gate = latch();
    const forked = defineWorkflow<{ ms: number; side: boolean }, number>('forked_napper', async (ctx, { ms, side }) => {
      const t = await ctx.now();
      if (side) {
        inGate.open();
        await gate.reached;
        await ctx.run('side', () => 1);
      }
      await ctx.sleep(ms);
      return t;
    });
    const { states, journals, executor } = sleepSetup(forked);
    const id = 'inv-forked';
    // Two starts of one ID (the second submitted again past the duplicate window), run at once, unwritten.
    const first = executor.execute(command('forked_napper', { ms: 60_000, side: true }, id), { startSequence: 1n, delivery: 1, firstDelivery: true });
    await inGate.reached;
    expect((await executor.execute(command('forked_napper', { ms: 60_000, side: false }, id), { startSequence: 5n, delivery: 1, firstDelivery: true })).kind).toBe('suspended');
    gate.open();
    // The first would append its clock before its side step: its state's create comes first, and fails.
    expect(['duplicate', 'fenced']).toContain((await first).kind);
    expect(journals.entries(id)).toEqual([]);
    const suspended = (await states.get(id))!.state;
    expect(suspended.journalStream).toBe('');
    expect(suspended.journal.map((e) => e.stepType)).toEqual(['NOW', 'SLEEP']);
  });

  it('cancels the children of an invocation cancelled from a state whose journal copy lags the stream', async () => {
    const child = defineWorkflow<unknown, number>('lagging_child', async () => 1);
    const parent = defineWorkflow<{ ms: number }, number>('lagging_parent', async (ctx, { ms }) => {
      await ctx.run('before', () => 1);
      await ctx.sleep(ms);
      return ctx.invoke(child, {});
    });
    const cancelled: string[] = [];
    const invocations: InvocationGateway = { start: async () => undefined, wake: async () => undefined, cancel: async (id) => void cancelled.push(id) };
    const { states, journals, executor, cmd, wake } = await dueSleeper(parent, undefined, invocations);
    // The resumed run starts its child, then stops at its suspension's write.
    const stopped = latch();
    const update = states.update.bind(states);
    states.update = async (state, revision) => (state.status === 'suspended' ? (stopped.open(), new Promise<number>(() => undefined)) : update(state, revision));
    void executor.execute(wake, { startSequence: 2n, delivery: 1, resumeUnclaimed: true });
    await stopped.reached;
    expect(journals.entries(cmd.invocationId).map((e) => e.stepType)).toContain('INVOKE:lagging_child');
    // A cancel is asked for; the wake-up comes back and ends the invocation cancelled.
    const running = (await states.get(cmd.invocationId))!;
    expect(running.state.journal.map((e) => e.stepType)).toEqual(['RUN:before', 'SLEEP']);
    await update({ ...running.state, cancelRequested: true }, running.revision);
    const ended = await executor.execute(wake, { startSequence: 2n, delivery: 2 });
    expect(ended.kind).toBe('ended');
    expect((await states.get(cmd.invocationId))!.state.status).toBe('cancelled');
    expect(cancelled).toHaveLength(1);
  });

  it('waits in memory for a short sleep', async () => {
    const { states, timers, executor } = sleepSetup();
    const cmd = command('napper', { ms: 20 });
    expect((await executor.execute(cmd)).kind).toBe('ended');
    expect(timers.timers).toHaveLength(0);
    expect((await states.get(cmd.invocationId))?.state.status).toBe('completed');
  });
});

describe('invocation state', () => {
  it('keeps set values across replays and writes them into the final state', async () => {
    const controller = new AbortController();
    const cart = defineWorkflow('cart', async (ctx) => {
      await ctx.set('items', ['a']);
      await ctx.set('note', 'temporary');
      controller.abort();
      await ctx.clear('note');
      await ctx.set('items', [...(ctx.get<string[]>('items') ?? []), 'b']);
      return { items: ctx.get<string[]>('items'), note: ctx.get('note') ?? null };
    });
    const { states, executor } = setup([cart]);
    const cmd = command('cart');
    expect((await executor.execute(cmd, { signal: controller.signal })).kind).toBe('interrupted');
    expect((await executor.execute(cmd)).kind).toBe('ended');
    const stored = await states.get(cmd.invocationId);
    expect(decodeJson(stored!.state.currentState)).toEqual({ items: ['a', 'b'], note: null });
    expect(decodeJson(stored!.state.workflowState.items!)).toEqual(['a', 'b']);
    expect(stored!.state.workflowState.note).toBeUndefined();
  });
});

describe('race', () => {
  it('journals the winner of an awakeable raced against a sleep and replays it', async () => {
    const awakeables = new MemoryAwakeableStore();
    const racer = defineWorkflow('racer', async (ctx) => {
      const approval = ctx.awakeable<string>();
      const timeout = ctx.sleep(60_000).then(() => 'timed out');
      const winner = await ctx.race([approval.promise, timeout]);
      return `${winner} after ${await ctx.run('next', () => 'more')}`;
    });
    const states = new MemoryStateStore();
    const journals = new MemoryJournalStore();
    const executor = new Executor({
      workflows: new WorkflowRegistry([racer]),
      states,
      journals,
      services: new FakeServices(),
      logger: silentLogger(),
      timers: new RecordedTimers(),
      awakeables,
    });
    const cmd = command('racer');
    expect((await executor.execute(cmd)).kind).toBe('suspended');
    awakeables.settle(`awk_0_${cmd.invocationId}`, { ok: true, value: encodeJson('approved') });
    expect((await executor.execute(cmd)).kind).toBe('ended');
    const stored = await states.get(cmd.invocationId);
    expect(decodeJson(stored!.state.currentState)).toBe('approved after more');
    const race = stored!.state.journal.find((e) => e.stepType === 'RACE');
    expect(decodeJson(race!.response)).toEqual({ winner: 0 });
  });

  it('refuses every write of a run taken over from it, even before the new run appends, and lets a stale copy of the command take nothing', async () => {
    // Each run of step `b` waits at its own gate, so the test decides who goes when.
    const entered: Array<() => void> = [];
    const gates: Array<Promise<void>> = [];
    const opened: Array<() => void> = [];
    const reached = (n: number) => new Promise<void>((resolve) => (entered[n] = resolve));
    for (let i = 0; i < 2; i++) gates.push(new Promise((resolve) => (opened[i] = resolve)));
    const reachedFirst = reached(0);
    const reachedSecond = reached(1);
    let runsOfB = 0;
    const stallable = defineWorkflow<Record<string, never>, string>('stallable', async (ctx) => {
      await ctx.run('a', () => 'a');
      return ctx.run('b', async () => {
        const n = runsOfB++;
        entered[n]?.();
        await gates[n];
        return `b${n}`;
      });
    });
    const { states, journals, executor } = setup([stallable]);
    const cmd = command('stallable');

    const stalled = executor.execute(cmd, { startSequence: 7n, delivery: 1, firstDelivery: true });
    await reachedFirst;
    // Its command comes back (the ack wait passed while it was stalled) to another run.
    const takeover = executor.execute(cmd, { startSequence: 7n, delivery: 2 });
    await reachedSecond;
    // An older copy of the command, still held somewhere, takes nothing over.
    expect((await executor.execute(cmd, { startSequence: 7n, delivery: 1 })).kind).toBe('fenced');

    opened[0]!();
    expect((await stalled).kind).toBe('fenced');
    opened[1]!();
    const ended = await takeover;
    expect(ended.kind).toBe('ended');
    const final = (await states.get(cmd.invocationId))!.state;
    expect(decodeJson(final.currentState)).toBe('b1');
    expect(final.journal.map((e) => e.stepType)).toEqual(['RUN:a', 'RUN:b']);
    // The last outcome is in the final state only: the stalled run appended nothing after the claim.
    expect(journals.entries(cmd.invocationId).map((e) => e.stepType)).toEqual(['RUN:a']);
  });

  describe('control requests and keyed state', () => {
    /** A workflow that waits at a gate inside its one step, then sets a keyed value. */
    function gated(exclusive: boolean) {
      let open: () => void = () => undefined;
      let reached: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (open = resolve));
      const atGate = new Promise<void>((resolve) => (reached = resolve));
      const workflow = defineWorkflow<Record<string, never>, string>(
        exclusive ? 'gated_exclusive' : 'gated',
        async (ctx) => {
          await ctx.run('wait', async () => {
            reached();
            await gate;
            return 'opened';
          });
          if (exclusive) await ctx.set('seen', true);
          // Its append is still in flight when the workflow returns.
          await ctx.run('after', () => 1);
          return 'done';
        },
        { exclusive },
      );
      return { workflow, open: () => open(), atGate };
    }

    function setupKeyed(workflows: AnyWorkflow[], keyed = new MemoryKeyedStateStore(), journals = new MemoryJournalStore()) {
      const states = new MemoryStateStore();
      const executor = new Executor({ workflows: new WorkflowRegistry(workflows), states, journals, services: new FakeServices(), logger: silentLogger(), keyed });
      return { states, executor, keyed };
    }

    /** What the client does for a request: marks the state by compare-and-set. */
    async function mark(states: MemoryStateStore, id: string, request: 'cancelRequested' | 'pauseRequested'): Promise<void> {
      const found = (await states.get(id))!;
      await states.update({ ...found.state, [request]: true }, found.revision);
    }

    it('ends a run cancelled when a cancel follows a pause before the run stops (the pause does not undo it)', async () => {
      const { workflow, open, atGate } = gated(false);
      const { states, executor } = setupKeyed([workflow]);
      const cmd = command(workflow.name);
      const control = new AbortController();
      const run = executor.execute(cmd, { signal: control.signal, startSequence: 1n, delivery: 1 });
      await atGate;
      await mark(states, cmd.invocationId, 'pauseRequested');
      control.abort(new PausedError());
      await mark(states, cmd.invocationId, 'cancelRequested');
      open();
      expect((await run).kind).toBe('ended');
      expect((await states.get(cmd.invocationId))!.state.status).toBe('cancelled');
    });

    it('completes a run whose cancel notice was lost, once and for good: the request came too late to change its end', async () => {
      const { workflow, open, atGate } = gated(true);
      const { states, executor, keyed } = setupKeyed([workflow]);
      const cmd = create(CommandSchema, { ...command(workflow.name), partitionKey: 'cart-late' });
      const run = executor.execute(cmd, { startSequence: 1n, delivery: 1 });
      await atGate;
      await mark(states, cmd.invocationId, 'cancelRequested'); // its notice never reaches the run
      open();
      expect((await run).kind).toBe('ended');
      // The command is delivered again (its ack was lost): nothing changes.
      expect((await executor.execute(cmd, { startSequence: 1n, delivery: 2 })).kind).toBe('already-ended');
      expect((await states.get(cmd.invocationId))!.state.status).toBe('completed');
      expect(Object.fromEntries(await keyed.values('cart-late'))).toEqual({ seen: encodeJson(true) });
    });

    it('applies no keyed change of a run whose last append is refused (it lost the invocation)', async () => {
      const { workflow, open, atGate } = gated(true);
      let refuse = false;
      const inner = new MemoryJournalStore();
      const journals: JournalStore = {
        location: (id) => inner.location(id),
        open: async (id, options) => {
          const log = await inner.open(id, options);
          return {
            entries: log.entries,
            get lastSequence() {
              return log.lastSequence;
            },
            append: async (entry) => {
              if (refuse && entry.stepType === 'RUN:after') {
                // Refused a moment later, as over the network: the workflow has returned by then.
                await new Promise((resolve) => setImmediate(resolve));
                throw new FencedError('journal claimed by another run');
              }
              return log.append(entry);
            },
          };
        },
      };
      const { executor, keyed } = setupKeyed([workflow], new MemoryKeyedStateStore(), journals as MemoryJournalStore);
      const cmd = create(CommandSchema, { ...command(workflow.name), partitionKey: 'cart-stale' });
      const run = executor.execute(cmd, { startSequence: 1n, delivery: 1 });
      refuse = true;
      await atGate;
      open();
      expect((await run).kind).toBe('fenced');
      expect(Object.fromEntries(await keyed.values('cart-stale'))).toEqual({});
    });

    it('writes the pending state of a queued exclusive invocation before it joins the key’s line', async () => {
      const { workflow, open, atGate } = gated(true);
      const states = new MemoryStateStore();
      const inner = new MemoryKeyedStateStore();
      const stateAtAcquire: Array<string | undefined> = [];
      const keyed: KeyedStateStore = {
        acquire: async (key, waiter) => {
          stateAtAcquire.push((await states.get(waiter.invocationId))?.state.status);
          return inner.acquire(key, waiter);
        },
        apply: (state) => inner.apply(state),
        release: (state) => inner.release(state),
        values: (key) => inner.values(key),
      };
      const executor = new Executor({ workflows: new WorkflowRegistry([workflow]), states, journals: new MemoryJournalStore(), services: new FakeServices(), logger: silentLogger(), keyed });
      const first = create(CommandSchema, { ...command(workflow.name), partitionKey: 'cart-q' });
      const second = create(CommandSchema, { ...command(workflow.name), partitionKey: 'cart-q' });
      const running = executor.execute(first, { startSequence: 1n, delivery: 1 });
      await atGate;
      expect((await executor.execute(second, { startSequence: 2n, delivery: 1 })).kind).toBe('queued');
      // The release that hands the key on can only wake an invocation whose state exists.
      expect(stateAtAcquire).toEqual(['pending', 'pending']);
      open();
      expect((await running).kind).toBe('ended');
    });
  });

  it('stops the run, rather than failing the workflow, when the cluster fails under a step (an election)', async () => {
    const inner = new MemoryAwakeableStore();
    let down = true;
    const awakeables: AwakeableStore = {
      create: async (id, invocationId) => {
        if (down) throw new Error('JetStream system temporarily unavailable');
        return inner.create(id, invocationId);
      },
      outcome: (id) => inner.outcome(id),
      settle: (id, outcome, live) => inner.settle(id, outcome, live),
    };
    const waits = defineWorkflow<Record<string, never>, string>('waits', async (ctx) => {
      const approval = ctx.awakeable<string>();
      try {
        return await approval.promise;
      } catch {
        return 'caught'; // a workflow that catches everything still does not see the outage
      }
    });
    const states = new MemoryStateStore();
    const executor = new Executor({ workflows: new WorkflowRegistry([waits]), states, journals: new MemoryJournalStore(), services: new FakeServices(), logger: silentLogger(), awakeables });
    const cmd = command('waits');
    expect((await executor.execute(cmd, { startSequence: 1n, delivery: 1 })).kind).toBe('interrupted');
    down = false;
    expect((await executor.execute(cmd, { startSequence: 1n, delivery: 1 })).kind).toBe('suspended');
    expect((await states.get(cmd.invocationId))!.state.status).toBe('suspended');
  });

  it('does not count a run the cluster failed under (an election) as an attempt', async () => {
    const inner = new MemoryStateStore();
    let failEnds = 2;
    const states: StateStore = {
      get: (id) => inner.get(id),
      create: async (state) => {
        if (state.status === 'completed' && failEnds-- > 0) throw new Error('JetStream system temporarily unavailable');
        return inner.create(state);
      },
      update: async (state, revision) => {
        if (state.status === 'completed' && failEnds-- > 0) throw new Error('JetStream system temporarily unavailable');
        return inner.update(state, revision);
      },
    };
    const executor = new Executor({ workflows: new WorkflowRegistry([greetThree]), states, journals: new MemoryJournalStore(), services: new FakeServices(), logger: silentLogger(), maxAttempts: 2 });
    const cmd = command('greet_three', { names: ['a'] });
    await expect(executor.execute(cmd, { startSequence: 1n, delivery: 1, firstDelivery: true })).rejects.toThrow('temporarily unavailable');
    await expect(executor.execute(cmd, { startSequence: 1n, delivery: 1 })).rejects.toThrow('temporarily unavailable');
    // Two failed runs, and still not "gave up after 2 attempts".
    expect((await executor.execute(cmd, { startSequence: 1n, delivery: 1 })).kind).toBe('ended');
    const stored = (await inner.get(cmd.invocationId))!.state;
    expect([stored.status, stored.attempt]).toEqual(['completed', 1]);
  });
});
