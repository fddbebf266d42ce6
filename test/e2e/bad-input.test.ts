/**
 * Bad input and clean shutdown, with the real apps as processes: an unknown handler fails
 * its invocation at once, an invalid partition key or flag is refused with exit code 2 and
 * a message naming it (no stack trace), an unreachable cluster is reported in one line and
 * retried, and every long-running app exits 0 on SIGTERM.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/bench/processes.js';
import {
  type AppProcess,
  escapeRegExp,
  GUIDE_TIME,
  guideLine,
  type HelloServiceApp,
  invocationIdOf,
  runApp,
  serviceEnv,
  startApp,
  startHelloService,
  startProcessor,
  stopApps,
  uniq,
} from '../support/app-process.js';

let service: HelloServiceApp;
let processor: AppProcess;

beforeAll(async () => {
  service = await startHelloService();
  processor = await startProcessor(service.port);
});

afterAll(async () => {
  await stopApps();
});

function client(args: string[], env: Record<string, string>) {
  return runApp('client', { args, env: { ...serviceEnv(service.port), ...env } });
}

/** Lines of a stack trace (`    at fn (file:line)`). */
function stackLines(proc: AppProcess): string[] {
  return proc.texts().filter((l) => /^\s+at /.test(l));
}

describe('bad input', () => {
  it('an unknown handler fails at once: exit 1, `handler not found`, no retries', async () => {
    const key = `nohandler-${uniq()}`;
    const run = await client([], { HANDLER: 'no_such_handler', PARTITION_KEY: key });
    expect(run.code, run.output()).toBe(1);
    const id = invocationIdOf(run);
    expect(run.output()).toContain('handler not found: no_such_handler');
    expect(stackLines(run)).toEqual([]);
    // Retries would take seconds (2 s apart, 3 attempts); a failure at once takes the
    // client's own start-up and round trip.
    expect(run.durationMs, run.output()).toBeLessThan(8_000);

    // A barrier: a later invocation of the same key runs only after the first was taken
    // off the queue, so a retry of it would show before this one completes.
    const barrier = await client([], { PARTITION_KEY: key });
    expect(barrier.code, barrier.output()).toBe(0);
    await processor.waitForLine(guideLine(`Execution completed successfully: ${invocationIdOf(barrier)}`));
    expect(processor.matching(new RegExp(`Processing command: invocation_id=${escapeRegExp(id)} handler=no_such_handler`))).toHaveLength(1);
    expect(processor.output()).toContain(`${id}: handler not found: no_such_handler`);

    const inspect = await runApp('inspect', { args: [id] });
    expect(inspect.code, inspect.output()).toBe(0);
    expect(inspect.texts()).toContain('  Status: failed');
    expect(inspect.texts()).toContain('  Error: handler not found: no_such_handler');
    expect(inspect.texts()).toContain('  Journal Entries: 0');
  });

  it('a partition key that cannot be a subject token is refused: exit 2, naming it, no stack trace', async () => {
    const run = await client([], { PARTITION_KEY: 'bad key.x' });
    expect(run.code, run.output()).toBe(2);
    expect(run.output()).toMatch(/partition key/i);
    expect(run.output()).toContain('bad key.x');
    expect(stackLines(run)).toEqual([]);
    expect(run.output()).not.toContain('✓ Command submitted successfully!');
  });

  it('a processor flag that is not a number is refused: exit 2, naming the flag', async () => {
    const run = await runApp('processor', { args: ['--max-concurrent', 'abc'], env: serviceEnv(service.port) });
    expect(run.code, run.output()).toBe(2);
    expect(run.output()).toContain('--max-concurrent');
    expect(run.output()).toContain('abc');
    expect(stackLines(run)).toEqual([]);
    expect(run.output()).not.toContain('Processor started');
  });

  it('an HTTP body limit that is not a number, or a DURABLE_API_TOKEN no bearer header can carry, is refused: exit 2, naming it', async () => {
    const cases: [string[], Record<string, string>, string][] = [
      [['--http-body-limit', 'lots'], {}, '--http-body-limit'],
      [[], { DURABLE_API_TOKEN: 'two words' }, 'DURABLE_API_TOKEN'],
    ];
    for (const [args, env, named] of cases) {
      const run = await runApp('processor', { args, env: { ...serviceEnv(service.port), ...env } });
      expect(run.code, run.output()).toBe(2);
      expect(run.output()).toContain(named);
      expect(run.output()).not.toContain('two words');
      expect(stackLines(run)).toEqual([]);
      expect(run.output()).not.toContain('Processor started');
    }
  });

  it('a dead-letter retention that is not a duration is refused: exit 2, naming the flag', async () => {
    const run = await runApp('processor', { args: ['--dead-letter-retention', '7 days'], env: serviceEnv(service.port) });
    expect(run.code, run.output()).toBe(2);
    expect(run.output()).toContain('invalid --dead-letter-retention: "7 days" is not a duration');
    expect(stackLines(run)).toEqual([]);
    expect(run.output()).not.toContain('Processor started');
  });

  it('an unreachable cluster is reported in one line, retried, and SIGTERM exits 0', async () => {
    const proc = startApp('processor', { args: ['--http-port', '0'], env: { ...serviceEnv(service.port), NATS_URL: 'nats://127.0.0.1:1' } });
    const unreachable = guideLine(/WARN NATS unreachable at nats:\/\/127\.0\.0\.1:1: .*; retrying.*/);
    // Reported again on the next attempt: it keeps retrying.
    await proc.waitForLines(unreachable, 2, 20_000);
    // One line each: everything it printed is a guide line, nothing runs over (no stack, no dump).
    for (const line of proc.texts()) expect(line, proc.output()).toMatch(new RegExp(`^${GUIDE_TIME}`));
    expect(stackLines(proc)).toEqual([]);
    expect(proc.output()).not.toContain('Processor started');

    const status = await proc.stop('SIGTERM');
    expect(status.code, proc.output()).toBe(0);
    expect(stackLines(proc)).toEqual([]);
  });
});

describe('the HTTP API opened to the network', () => {
  it('--http-host 0.0.0.0 without DURABLE_API_TOKEN listens there and warns that it is open', async () => {
    const port = await freePort();
    const proc = await startProcessor(service.port, { args: ['--http-port', String(port), '--http-host', '0.0.0.0'], env: { DURABLE_API_TOKEN: '' } });
    await proc.waitForLine(guideLine(`HTTP API listening on 0.0.0.0:${port} (OpenAPI at /openapi.json)`));
    await proc.waitForLine(guideLine('WARN HTTP API is open to the network without a token: set DURABLE_API_TOKEN'));
    expect((await fetch(`http://127.0.0.1:${port}/api/workflows/stats`)).status).toBe(200);
    const status = await proc.stop('SIGTERM');
    expect(status.code, proc.output()).toBe(0);
  });
});

describe('clean shutdown on SIGTERM', () => {
  it('bin/inspect watch prints state changes and exits 0 on SIGTERM', async () => {
    const watch = startApp('inspect', { args: ['watch'] });
    await watch.waitForLine(/Watching execution states/);
    const run = await client([], { PARTITION_KEY: `watch-${uniq()}` });
    expect(run.code, run.output()).toBe(0);
    const id = invocationIdOf(run);
    await watch.waitForLine(new RegExp(`^${escapeRegExp(id)}\\s+completed\\s+hello_workflow$`));

    const status = await watch.stop('SIGTERM');
    expect(status.code, watch.output()).toBe(0);
    expect(stackLines(watch)).toEqual([]);
  });

  it('the processor exits 0 on SIGTERM', async () => {
    const status = await processor.stop('SIGTERM');
    expect(status.code, processor.output()).toBe(0);
    expect(processor.texts()).toContainEqual(expect.stringMatching(guideLine('Received SIGTERM, shutting down...')));
    expect(processor.texts()).toContainEqual(expect.stringMatching(guideLine('Processor stopped')));
    expect(stackLines(processor)).toEqual([]);
  });

  it('hello-service exits 0 on SIGTERM', async () => {
    const status = await service.stop('SIGTERM');
    expect(status.code, service.output()).toBe(0);
    expect(service.texts()).toContainEqual(expect.stringMatching(guideLine('Received SIGTERM, shutting down...')));
    expect(service.texts()).toContainEqual(expect.stringMatching(guideLine('HelloService stopped')));
    expect(stackLines(service)).toEqual([]);
  });
});
