/**
 * A workflow of several steps, for trying out recovery (the guide's Example 3): kill the
 * processor half-way and start it again; the greetings already made are replayed from
 * the journal and HelloService is called only for the rest.
 */
import { defineWorkflow } from '@durable/core';

/** Input of {@link customWorkflow}. */
export interface GreetManyInput {
  /** Who to greet, one step each. @default five names */
  names?: string[];
}

/** Output of {@link customWorkflow}. */
export interface GreetManyOutput {
  greetings: string[];
  greetedAt: number;
}

const DEFAULT_NAMES = ['Alice', 'Bob', 'Carol', 'Dave', 'Eve'];

/** Greets each name in turn, one durable call per name. */
export const customWorkflow = defineWorkflow<GreetManyInput, GreetManyOutput>(
  'custom_workflow',
  async (ctx, input) => {
    const names = Array.isArray(input?.names) && input.names.length > 0 ? input.names : DEFAULT_NAMES;
    const greetings: string[] = [];
    for (const [i, name] of names.entries()) {
      const { message } = await ctx.call<{ message: string }>('HelloService', 'SayHello', { name });
      ctx.log.info(`Greeted ${name} (${i + 1} of ${names.length})`);
      greetings.push(message);
    }
    return { greetings, greetedAt: await ctx.now() };
  },
  { service: 'HelloService' },
);
