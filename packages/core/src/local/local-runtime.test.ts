import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { ServiceCallError, TerminalError } from '../errors.js';
import { defineWorkflow, protobuf } from '../engine/workflow.js';
import { HelloRequestSchema, HelloResponseSchema, type HelloRequest, type HelloResponse } from '../gen/hello/hello_pb.js';
import type { ServiceInvoker } from '../services/service-invoker.js';
import { LocalRuntime } from './local-runtime.js';

const hello: ServiceInvoker = {
  call: async (_service, _method, request) => {
    const { name } = request as { name: string };
    if (name === '') throw new ServiceCallError('HelloService', 'SayHello', 3, 'name is required');
    return { message: `Hello, ${name}!` };
  },
  close: () => undefined,
};

const greet = defineWorkflow<{ name: string }, string>('greet', async (ctx, { name }) => {
  const { message } = await ctx.call<{ message: string }>('HelloService', 'SayHello', { name });
  await ctx.sleep(5);
  return `${message} #${(await ctx.run('count', () => 1)).toString()}`;
});

describe('local mode', () => {
  it('runs a workflow in-process with the same journal as a processor', async () => {
    const local = new LocalRuntime({ workflows: [greet], services: hello });
    const state = await local.run(greet, { name: 'Ada' }, { invocationId: 'local-1' });
    expect(state.status).toBe('completed');
    expect(state.journal.map((e) => e.stepType)).toEqual(['HelloService.SayHello', 'SLEEP', 'SLEEP', 'RUN:count']);
    expect(await local.invoke(greet, { name: 'Bo' })).toBe('Hello, Bo! #1');
  });

  it('reports a failed workflow as a TerminalError with the reason', async () => {
    const local = new LocalRuntime({ workflows: [greet], services: hello });
    await expect(local.invoke(greet, { name: '' })).rejects.toThrow(TerminalError);
    await expect(local.invoke(greet, { name: '' })).rejects.toThrow(/name is required/);
  });

  it('names the missing service when none is given', async () => {
    const local = new LocalRuntime({ workflows: [greet] });
    await expect(local.invoke(greet, { name: 'x' })).rejects.toThrow(/no service HelloService in local mode/);
  });
});

describe('local mode, the whole programming model', () => {
  const child = defineWorkflow<{ n: number }, number>('double', async (ctx, { n }) => ctx.run('double', () => n * 2));
  const parent = defineWorkflow<{ n: number }, { doubled: number; sent: string }>('parent', async (ctx, { n }) => {
    const doubled = await ctx.invoke(child, { n });
    const sent = await ctx.send(child, { n: doubled }, { delay: 10 });
    return { doubled, sent };
  });
  const approval = defineWorkflow<Record<string, never>, string>('approval', async (ctx) => {
    const answer = ctx.awakeable<string>();
    await ctx.set('awakeable', answer.id);
    return ctx.race([answer.promise, ctx.sleep(60_000).then(() => 'timed out')]);
  });
  const counter = defineWorkflow<Record<string, never>, number>(
    'counter',
    async (ctx) => {
      const count = (ctx.get<number>('count') ?? 0) + 1;
      await ctx.set('count', count);
      return count;
    },
    { exclusive: true },
  );

  it('awaits children and runs sends', async () => {
    const local = new LocalRuntime({ workflows: [child, parent] });
    const out = await local.invoke(parent, { n: 4 }, { invocationId: 'p1' });
    expect(out).toEqual({ doubled: 8, sent: 'p1/1' });
    expect((await local.waitForResult('p1/1')).currentState).toEqual(new TextEncoder().encode('16'));
  });

  it('resolves awakeables and keeps keyed state per partition key', async () => {
    const local = new LocalRuntime({ workflows: [approval, counter] });
    const running = local.run(approval, {}, { invocationId: 'a1' });
    await local.resolveAwakeable('awk_0_a1', 'approved');
    expect(new TextDecoder().decode((await running).currentState)).toBe('"approved"');
    const counts = await Promise.all([1, 2, 3].map(() => local.invoke(counter, {}, { partitionKey: 'k' })));
    expect(counts.sort()).toEqual([1, 2, 3]);
    expect(await local.invoke(counter, {}, { partitionKey: 'other' })).toBe(1);
  });
});

describe('typed workflows', () => {
  const greetPb = defineWorkflow(
    'greet_pb',
    async (_ctx, request: HelloRequest) => create(HelloResponseSchema, { message: `Hello, ${request.name}!` }),
    { input: protobuf(HelloRequestSchema), output: protobuf(HelloResponseSchema) },
  );
  const add = defineWorkflow<{ a: number; b: number }, number>('add', async (_ctx, { a, b }) => a + b);

  it('take and return protobuf messages, carried as their JSON form', async () => {
    const local = new LocalRuntime({ workflows: [greetPb] });
    const response: HelloResponse = await local.invoke(greetPb, create(HelloRequestSchema, { name: 'Ada' }));
    expect(response.$typeName).toBe('hello.HelloResponse');
    expect(response.message).toBe('Hello, Ada!');
    const state = await local.run('greet_pb', { name: 'Bo' });
    expect(JSON.parse(new TextDecoder().decode(state.currentState))).toEqual({ message: 'Hello, Bo!' });
  });

  it('check input and output types at compile time', async () => {
    const local = new LocalRuntime({ workflows: [add] });
    const sum: number = await local.invoke(add, { a: 1, b: 2 });
    expect(sum).toBe(3);
    // @ts-expect-error: the input of `add` has no field `c`, and `b` is missing.
    await expect(local.invoke(add, { a: 1, c: 2 })).resolves.toBeNull(); // 1 + undefined: NaN, JSON null
    // @ts-expect-error: the output of `add` is a number, not a string.
    const wrong: string = await local.invoke(add, { a: 1, b: 1 });
    expect(wrong).toBe(2);
  });

  it('names the message type when the input does not fit it', async () => {
    const local = new LocalRuntime({ workflows: [greetPb] });
    const state = await local.run('greet_pb', { nom: 'x' });
    expect(state.status).toBe('failed');
    expect(state.error).toMatch(/workflow input is not a hello.HelloRequest/);
  });
});

describe('ctx.any', () => {
  const pick = defineWorkflow<{ failFirst: boolean; failAll: boolean }, string>('pick', async (ctx, { failFirst, failAll }) => {
    const slow = ctx.sleep(30).then(() => {
      if (failAll) throw new TerminalError('slow failed');
      return 'slow';
    });
    const fast = ctx.run('fast', () => {
      if (failFirst || failAll) throw new TerminalError('fast failed');
      return 'fast';
    });
    try {
      return await ctx.any([slow, fast]);
    } catch (err) {
      return err instanceof AggregateError ? `all failed: ${err.errors.map((e: Error) => e.message).join(', ')}` : 'unexpected';
    }
  });

  it('takes the first success, skips failures, and reports when all fail', async () => {
    const local = new LocalRuntime({ workflows: [pick] });
    expect(await local.invoke(pick, { failFirst: false, failAll: false })).toBe('fast');
    expect(await local.invoke(pick, { failFirst: true, failAll: false })).toBe('slow');
    expect(await local.invoke(pick, { failFirst: false, failAll: true })).toBe('all failed: slow failed, fast failed');
    const state = await local.run(pick, { failFirst: true, failAll: false });
    expect(state.journal.filter((e) => e.stepType === 'ANY').map((e) => new TextDecoder().decode(e.response))).toEqual(['{"winner":0}']);
  });
});
