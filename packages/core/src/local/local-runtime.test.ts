import { describe, expect, it } from 'vitest';
import { ServiceCallError, TerminalError } from '../errors.js';
import { defineWorkflow } from '../engine/workflow.js';
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
