/**
 * simple: invoke hello_workflow and print its answer.
 *
 *   make example-simple             # or: tsx examples/simple/main.ts [name]
 *
 * Needs the cluster, HelloService and the processor running (examples/README.md).
 */
import { runExample } from '../shared/run-example.js';

runExample(async ({ client }) => {
  const name = process.argv[2] ?? 'World';
  // invoke = submit a command, then wait for the outcome. Waiting is push-based: the
  // processor announces the final state, so the answer comes as soon as the run ends.
  const message = await client.invoke<{ name: string }, string>('hello_workflow', { name });
  console.log(`hello_workflow answered: ${message}`);
});
