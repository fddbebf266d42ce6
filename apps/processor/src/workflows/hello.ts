/**
 * The usage guide's first workflow: one durable call to HelloService.
 */
import { defineWorkflow } from '@durable/core';

/** Input of {@link helloWorkflow}. */
export interface HelloInput {
  /** Who to greet. @default 'World' */
  name?: string;
}

interface HelloResponse {
  message: string;
}

/** Greets one name through HelloService and returns the greeting. */
export const helloWorkflow = defineWorkflow<HelloInput, string>(
  'hello_workflow',
  async (ctx, input) => {
    ctx.log.info(`Executing hello workflow: invocation_id=${ctx.invocationId}`);
    const { message } = await ctx.call<HelloResponse>('HelloService', 'SayHello', { name: input?.name ?? 'World' });
    ctx.log.info({ message }, `Hello workflow completed: message=${message}`);
    return message;
  },
  { service: 'HelloService' },
);
