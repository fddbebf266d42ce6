/**
 * The runnable examples (examples/), each run as its users run it (tsx, or bash for
 * rest-invocation) against the real apps: bin/hello-service, bin/ticket-service and
 * bin/processor with its HTTP API, on the suite's cluster. Each test checks what the
 * example prints and what it left in the engine. The processor's API wants a bearer token
 * (DURABLE_API_TOKEN), which the examples are given too: every HTTP call they make sends it.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesToText, connectNats, DurableClient, natsServers, type ExecutionState } from '../../packages/core/src/index.js';
import { freePort } from '../../scripts/bench/processes.js';
import {
  type AppProcess,
  guideLine,
  type HelloServiceApp,
  receivedNames,
  startApp,
  startCommand,
  startHelloService,
  startProcessor,
  stopApps,
  testNatsUrl,
  uniq,
} from '../support/app-process.js';
import { REPO_ROOT } from '../support/nats-cluster.js';

const TSX = join(REPO_ROOT, 'node_modules', '.bin', 'tsx');
const GREETING = (name: string) => `Hello, ${name}! Welcome to Durable Execution on NATS JetStream.`;
/** Nothing listens there: for the examples' "start this" messages. */
const DEAD_NATS = 'nats://127.0.0.1:1';
const DEAD_HTTP = 'http://127.0.0.1:1';
/** The processor's DURABLE_API_TOKEN, and the examples'. */
const API_TOKEN = `examples-${process.pid}`;
/** The processor's --http-body-limit, bytes. */
const BODY_LIMIT = 4096;

let hello: HelloServiceApp;
let tickets: AppProcess & { port: number };
let processor: AppProcess;
let nc: NatsConnection;
let client: DurableClient;
/** What every example gets: where the cluster, the processor and HelloService are. */
let exampleEnv: Record<string, string>;

beforeAll(async () => {
  hello = await startHelloService();
  const ticketApp = startApp('ticket-service', { env: { GRPC_PORT: '0' } });
  const [, ticketPort] = await ticketApp.waitForLine(guideLine(/TicketService listening on :(\d+)/));
  tickets = Object.assign(ticketApp, { port: Number(ticketPort) });
  const httpPort = await freePort();
  processor = await startProcessor(hello.port, {
    args: ['--http-port', String(httpPort), '--http-body-limit', String(BODY_LIMIT)],
    env: { SERVICE_TICKETSERVICE_ADDRESS: `127.0.0.1:${tickets.port}`, DURABLE_API_TOKEN: API_TOKEN },
  });
  // No --http-host: this machine only.
  await processor.waitForLine(guideLine(`HTTP API listening on 127.0.0.1:${httpPort} (OpenAPI at /openapi.json)`));
  exampleEnv = {
    NATS_URL: testNatsUrl(),
    DURABLE_API_TOKEN: API_TOKEN,
    DURABLE_HTTP_URL: `http://127.0.0.1:${httpPort}`,
    SERVICE_HELLOSERVICE_ADDRESS: `127.0.0.1:${hello.port}`,
  };
  nc = await connectNats({ servers: natsServers(testNatsUrl()), maxAttempts: 3 });
  client = await DurableClient.connect({ nc });
});

afterAll(async () => {
  await nc?.close();
  await stopApps();
});

/** Runs an example to its end (it must end within `timeoutMs`). */
async function runExample(
  name: string,
  options: { args?: string[]; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<AppProcess> {
  const [command, script] = name === 'rest-invocation' ? ['bash', 'run.sh'] : [TSX, 'main.ts'];
  const proc = startCommand(command, {
    args: [join('examples', name, script), ...(options.args ?? [])],
    env: { ...exampleEnv, ...options.env },
    label: `example ${name}`,
  });
  await proc.waitForExit(options.timeoutMs ?? 30_000);
  return proc;
}

/** The first stdout line matching `pattern`; fails with the whole output when there is none. */
function stdoutLine(proc: AppProcess, pattern: RegExp): RegExpMatchArray {
  for (const text of proc.texts('stdout')) {
    const m = text.match(pattern);
    if (m) return m;
  }
  throw new Error(`${proc.name} printed no line matching ${pattern}; its output:\n${proc.output()}`);
}

function expectSuccess(proc: AppProcess): void {
  expect(proc.status?.code, proc.output()).toBe(0);
  expect(proc.texts('stderr'), proc.output()).toEqual([]);
}

function outputOf<T>(state: ExecutionState | null): T {
  if (!state) throw new Error('no state');
  return JSON.parse(bytesToText(state.currentState)) as T;
}

describe('the examples against a processor, HelloService and TicketService', () => {
  it('simple invokes hello_workflow and prints its answer', async () => {
    const name = `simple-${uniq()}`;
    const run = await runExample('simple', { args: [name] });
    expectSuccess(run);
    expect(run.texts('stdout')).toContain(`hello_workflow answered: ${GREETING(name)}`);
    expect(receivedNames(hello).filter((n) => n === name)).toHaveLength(1);
  });

  it('async submits, reports the early status, and later the result and journal', async () => {
    const run = await runExample('async');
    expectSuccess(run);
    const [, id] = stdoutLine(run, /^Submitted custom_workflow: invocation (\S+)$/);
    expect(stdoutLine(run, /^Status right after submitting: (.+)$/)[1]).toMatch(/^(not started yet|running|completed)$/);
    const out = run.texts('stdout');
    expect(out).toContain('Status later: completed');
    for (const name of ['Ada', 'Grace', 'Edsger']) expect(out).toContain(`  ${GREETING(name)}`);
    expect(out).toContain('Journal: 4 steps (HelloService.SayHello, HelloService.SayHello, HelloService.SayHello, NOW)');
    const state = await client.getState(id!);
    expect(state?.status).toBe('completed');
    expect(outputOf<{ greetings: string[] }>(state).greetings).toHaveLength(3);
  });

  it('typed invokes through the definitions, the protobuf workflow included', async () => {
    const run = await runExample('typed');
    expectSuccess(run);
    const out = run.texts('stdout');
    expect(out).toContain(`hello_workflow: ${GREETING('Typed')}`);
    expect(stdoutLine(run, /^order_processing: order order-typed-1, receipt [0-9a-f-]{36}$/)).toBeTruthy();
    expect(out).toContain(`greet_proto: hello.HelloResponse { message: ${JSON.stringify(GREETING('Protobuf'))} }`);
    await processor.waitForLine(guideLine(`greet_proto: ${GREETING('Protobuf')}`));
  });

  it('multi-service calls TicketService, runs a step, then calls HelloService, and prints that journal', async () => {
    const run = await runExample('multi-service');
    expectSuccess(run);
    const [, ticketId, ref] = stdoutLine(run, /^Booked (GA-\S+) as (BK-\S+): (.+)$/);
    const steps = run.matches(/^ {2}step (\d+): (.+?) -> /).map((m) => `${m[1]} ${m[2]}`);
    expect(steps).toEqual(['0 TicketService.Reserve', '1 RUN:issue booking reference', '2 HelloService.SayHello']);
    expect(run.texts('stdout')).toContain(`  step 1: RUN:issue booking reference -> ${JSON.stringify(ref)}`);
    await tickets.waitForLine(guideLine(`Received Reserve request: ticket_id=${ticketId}`));
  });

  it('concurrent-workflows completes every invocation it submitted and prints the throughput', async () => {
    const run = await runExample('concurrent-workflows', { env: { COUNT: '40' } });
    expectSuccess(run);
    stdoutLine(run, /^Submitted 40 invocations in \d+ ms$/);
    const [, rate] = stdoutLine(run, /^Completed 40 of 40 in [\d.]+ s: (\d+) workflows\/s$/);
    expect(Number(rate)).toBeGreaterThan(0);
    for (let i = 0; i < 40; i++) expect(receivedNames(hello)).toContain(`user-${i}`);
  });

  it('retry-failures finds the two failed orders and completes them with corrected input', async () => {
    const run = await runExample('retry-failures');
    expectSuccess(run);
    expect(run.texts('stdout')).toContain('2 orders completed, 2 failed:');
    const failed = run.matches(/^ {2}(\S+) failed: order amount must be positive, got (-5|0)$/).map((m) => m[1]!);
    expect(failed).toHaveLength(2);
    const retries = run.matches(/^ {2}resubmitted (\S+) with amount (\d+) as (\S+): completed \(retry of (\S+)\)$/);
    expect(retries.map((m) => m[2]).sort()).toEqual(['1', '5']);
    for (const [, , , retryId, of] of retries) {
      expect(failed).toContain(of);
      const state = await client.getState(retryId!);
      expect(state?.status).toBe('completed');
      expect(state?.retryOf).toBe(of);
      expect((await client.getState(of!))?.status).toBe('failed');
    }
  });

  it('pause-cancel keeps a paused sleeper put past its due time, resumes it, and cancels the other', async () => {
    const run = await runExample('pause-cancel');
    expectSuccess(run);
    const [, a, b] = stdoutLine(run, /^Both reminders are asleep \(suspended\): (\S+), (\S+)$/);
    const out = run.texts('stdout');
    expect(out).toContain(`Paused ${a}: paused`);
    expect(out).toContain('Its sleep is over, and it is still paused');
    expect(out).toContain(`Resumed ${a}: completed, output ${JSON.stringify(GREETING('paused'))}`);
    expect(out).toContain(`Cancelled ${b}: cancelled`);
    const cancelled = await client.getState(b!);
    expect(cancelled?.status).toBe('cancelled');
    // The cancelled reminder never woke up to greet.
    expect(receivedNames(hello)).not.toContain('cancelled');
    expect(receivedNames(hello)).toContain('paused');
  });

  it('ticket-cart keeps the cart in keyed state across invocations, and checkout empties it', async () => {
    const run = await runExample('ticket-cart');
    expectSuccess(run);
    const out = run.texts('stdout');
    const adds = run.matches(/^add: reserved (\S+); cart (\S+) holds (.+)$/);
    expect(adds).toHaveLength(3);
    const cartId = adds[0]![2]!;
    const [a1, a2, a3] = adds.map((m) => m[1]!) as [string, string, string];
    // Submitted at once, run one at a time in order: each add saw the ones before.
    expect(adds.map((m) => m[3])).toEqual([a1, `${a1}, ${a2}`, `${a1}, ${a2}, ${a3}`]);
    expect(out).toContain(`add ${a2} to another cart: ticket ${a2} is already reserved`);
    expect(out).toContain(`remove: released ${a3}; cart holds ${a1}, ${a2}`);
    expect(out).toContain(`keyed state of ${cartId}: ${JSON.stringify({ tickets: [a1, a2] })}`);
    const [, orderId] = stdoutLine(run, new RegExp(`^checkout: order (\\S+) with ${a1}, ${a2}$`));

    // The engine's record of the cart, read here independently of the example.
    expect(await client.getKeyedState(cartId)).toEqual({ lastOrder: { orderId, cartId, tickets: [a1, a2] } });
    const released = tickets.matching(guideLine(`Received Release request: ticket_id=${a3}`));
    expect(released).toHaveLength(1);
  });

  it('delayed-execution runs the greeting once its delay is over', async () => {
    const delayMs = 2_000;
    const run = await runExample('delayed-execution', { env: { DELAY_MS: String(delayMs) } });
    expectSuccess(run);
    const [, greetingId] = stdoutLine(run, new RegExp(`^schedule_greeting ended; greeting (\\S+) is due in ${delayMs} ms$`));
    expect(run.texts('stdout')).toContain('greeting status now: not started (waiting on its timer)');
    const [, after] = stdoutLine(run, new RegExp(`^greeting completed (\\d+) ms after it was scheduled: ${GREETING('Later')}$`));
    expect(Number(after)).toBeGreaterThanOrEqual(delayMs);

    const greeting = await client.getState(greetingId!);
    expect(greeting?.status).toBe('completed');
    expect(greeting?.handler).toBe('delayed_greeting');
    const { scheduledAtMs, ranAtMs } = outputOf<{ scheduledAtMs: number; ranAtMs: number }>(greeting);
    expect(ranAtMs - scheduledAtMs).toBeGreaterThanOrEqual(delayMs);
    // Its first step was journaled once the timer had fired, not at the send.
    const [first] = await client.getJournal(greetingId!);
    expect(Number(first!.recordedAtMs) - scheduledAtMs).toBeGreaterThanOrEqual(delayMs);
  });

  it('approval-workflow prints the curl command, resolves it over HTTP, and the other expense times out', async () => {
    const run = await runExample('approval-workflow');
    expectSuccess(run);
    const [, id] = stdoutLine(run, /^Expense (\S+) is waiting for approval\. A manager approves it with:$/);
    const curl = stdoutLine(run, /^ {2}curl -X POST (\S+)\/api\/awakeables\/(awk_\d+_\S+)\/resolve -H "Authorization: Bearer \$DURABLE_API_TOKEN" -d '(.+)'$/);
    expect(curl[1]).toBe(exampleEnv.DURABLE_HTTP_URL);
    expect(curl[2]).toContain(id);
    expect(JSON.parse(curl[3]!)).toEqual({ result: { approved: true, approver: 'Lin' } });
    expect(run.texts('stdout')).toContain(`Expense ${id}: approved by Lin (Ada, 120)`);
    const [, other] = stdoutLine(run, /^Expense (\S+): timed out \(Grace, 80\)$/);

    expect(outputOf(await client.getState(id!))).toEqual({ status: 'approved', employee: 'Ada', amount: 120, approver: 'Lin', comment: 'ok' });
    const journal = await client.getJournal(id!);
    expect(journal.find((e) => e.stepType === `AWAKEABLE:${curl[2]}`)?.error).toBe('');
    expect(outputOf(await client.getState(other!))).toEqual({ status: 'timed out', employee: 'Grace', amount: 80 });
  });

  it('rest-invocation runs every call over curl: invoke, idempotency, state, pause, resume, cancel, retry', async () => {
    const run = await runExample('rest-invocation');
    expectSuccess(run);
    const out = run.texts('stdout');
    expect(out).toContain(`status: completed, output: ${GREETING('REST')}`);
    expect(out).toContain('duplicate: true');
    expect(out).toContain('status: completed, journal steps: 3');
    expect(out).toContain('status: cancelled');
    expect(out).toContain('status: failed, error: order amount must be positive, got -1');
    expect(out).toContain(`{"error":"invocation not found: ${stdoutLine(run, /\/api\/workflows\/(no-such-invocation-\S+)(?: |$)/)[1]}","code":"INVOCATION_NOT_FOUND"}`);
    // The Idempotency-Key became the invocation ID, and it ran once.
    const [, key] = stdoutLine(run, /-H 'Idempotency-Key: (greeting-\S+)'/);
    // The commands it prints name the token's variable, never its value.
    expect(stdoutLine(run, /^\$ curl -X POST \S+ -H "Authorization: Bearer \$DURABLE_API_TOKEN"/)).toBeTruthy();
    expect(run.output()).not.toContain(API_TOKEN);
    expect((await client.getState(key!))?.status).toBe('completed');
    expect(receivedNames(hello).filter((n) => n === 'REST')).toHaveLength(1);
    // The retry: a new invocation with the same (bad) input, linked to the failed one.
    const [, retryId, retryOf] = stdoutLine(run, /^\{"invocation_id":"([^"]+)","retry_of":"([^"]+)"\}$/);
    const retried = await client.waitForResult(retryId!);
    expect(retried.retryOf).toBe(retryOf);
    expect(retried.status).toBe('failed');
  });

  it('direct-grpc-call calls HelloService with a plain gRPC client, no engine', async () => {
    const name = `grpc-${uniq()}`;
    const run = await runExample('direct-grpc-call', { args: [name], env: { NATS_URL: DEAD_NATS } });
    expectSuccess(run);
    expect(run.texts('stdout')).toEqual([`HelloService at ${exampleEnv.SERVICE_HELLOSERVICE_ADDRESS} answered: ${GREETING(name)}`]);
    await hello.waitForLine(guideLine(`Received SayHello request: name=${name}`));
  });

  it('query-api pages through failed orders, prints the stats, and lists the same over HTTP', async () => {
    const before = await client.getWorkflowStats({ handler: 'order_processing' });
    const run = await runExample('query-api');
    expectSuccess(run);
    const out = run.texts('stdout');
    expect(out.filter((line) => /^ {2}page \d+: \S+ failed \(this run\)$/.test(line))).toHaveLength(2);
    const pages = out.filter((line) => /^ {2}page \d+: /.test(line)).map((line) => line.split(' ')[4]);
    expect(new Set(pages).size).toBe(pages.length);
    expect(out).toContain("GET /api/workflows?status=failed&handler=order_processing: 2 of this run's 2 failed orders listed");
    const total = Number(stdoutLine(run, /^GET \/api\/workflows\/stats\?handler=order_processing: total (\d+)$/)[1]);
    expect(total).toBeGreaterThanOrEqual(before.total + 2);
    expect((await client.getWorkflowStats({ handler: 'order_processing' })).byStatus.failed).toBeGreaterThanOrEqual(before.byStatus.failed + 2);
  });
});

describe("the processor's HTTP API, locked", () => {
  const url = (path: string) => `${exampleEnv.DURABLE_HTTP_URL}${path}`;
  const auth = () => ({ authorization: `Bearer ${API_TOKEN}` });

  it('answers 401 without DURABLE_API_TOKEN on every route but /health, and serves it with the token', async () => {
    expect((await fetch(url('/health'))).status).toBe(200);
    const refused = await fetch(url('/api/workflows/stats'));
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
    expect((await fetch(url('/api/workflows/stats'), { headers: auth() })).status).toBe(200);
  });

  it('answers 413 past --http-body-limit', async () => {
    const body = JSON.stringify({ name: 'x'.repeat(BODY_LIMIT) });
    const res = await fetch(url('/api/workflows/hello_workflow/invoke'), { method: 'POST', headers: auth(), body });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({ error: `the request body is over the limit of ${BODY_LIMIT} bytes`, field: 'body' });
  });
});

describe('examples that need nothing running, or find something missing', () => {
  it('local runs the processor’s workflows in-process, with no NATS reachable', async () => {
    const run = await runExample('local', { env: { NATS_URL: DEAD_NATS, DURABLE_HTTP_URL: DEAD_HTTP } });
    expectSuccess(run);
    expect(run.texts('stdout')).toEqual([
      'hello_workflow: Hello, Local! (from a fake HelloService)',
      'custom_workflow: completed, journal:',
      '  step 0: HelloService.SayHello',
      '  step 1: HelloService.SayHello',
      '  step 2: NOW',
      'cart_checkout: order with tickets A1, A2',
    ]);
  });

  it('an example without a cluster says in one line to start it', async () => {
    const run = await runExample('simple', { env: { NATS_URL: DEAD_NATS } });
    expect(run.status?.code).toBe(1);
    expect(run.texts()).toEqual([expect.stringMatching(/^error: cannot reach NATS at nats:\/\/127\.0\.0\.1:1 .*`make cluster-up`/)]);
  });

  it('an example without a processor says in one line to start one', async () => {
    const run = await runExample('ticket-cart', { env: { DURABLE_HTTP_URL: DEAD_HTTP } });
    expect(run.status?.code).toBe(1);
    expect(run.texts()).toEqual([`error: no processor answers at ${DEAD_HTTP}: start one with \`make run-processor\` (or set DURABLE_HTTP_URL)`]);
    const rest = await runExample('rest-invocation', { env: { DURABLE_HTTP_URL: DEAD_HTTP } });
    expect(rest.status?.code).toBe(1);
    expect(rest.texts()).toEqual([`error: no processor answers at ${DEAD_HTTP}: start one with \`make run-processor\` (or set DURABLE_HTTP_URL)`]);
  });

  it('rest-invocation without the processor’s token, or with another, says in one line to set it', async () => {
    for (const token of ['', 'not-the-token']) {
      const run = await runExample('rest-invocation', { env: { DURABLE_API_TOKEN: token } });
      expect(run.status?.code, run.output()).toBe(1);
      expect(run.texts()).toEqual([`error: the processor at ${exampleEnv.DURABLE_HTTP_URL} wants a bearer token: set DURABLE_API_TOKEN to the processor's`]);
    }
  });

  it('direct-grpc-call without HelloService says to start it', async () => {
    const port = await freePort();
    const run = await runExample('direct-grpc-call', { env: { SERVICE_HELLOSERVICE_ADDRESS: `127.0.0.1:${port}` } });
    expect(run.status?.code).toBe(1);
    expect(run.texts()).toEqual([
      `error: HelloService is not reachable at 127.0.0.1:${port}: start it with \`make run-service\` (or set SERVICE_HELLOSERVICE_ADDRESS)`,
    ]);
  });
});

describe('make targets', () => {
  it('make examples lists a make example-<name> target for every directory of examples/', () => {
    const dirs = readdirSync(join(REPO_ROOT, 'examples'), { withFileTypes: true })
      .filter((d) => d.isDirectory() && d.name !== 'shared' && d.name !== 'node_modules')
      .map((d) => d.name)
      .sort();
    expect(dirs).toHaveLength(14); // every example the original ships
    const listing = execFileSync('make', ['-s', 'examples'], { cwd: REPO_ROOT, encoding: 'utf8' });
    const targets = [...listing.matchAll(/^ {2}make example-(\S+) +\S/gm)].map((m) => m[1]).sort();
    expect(targets).toEqual(dirs);
  });

  it('make example-local runs the local example', () => {
    const out = execFileSync('make', ['-s', 'example-local'], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, NATS_URL: DEAD_NATS } });
    expect(out).toContain('cart_checkout: order with tickets A1, A2');
  });
});
