/**
 * Clients and the HTTP API ride out a JetStream leader election: with the node leading the
 * COMMANDS stream killed while invocations are submitted, every submission is either
 * accepted (and then runs to its end) or answered 503 with `Retry-After`; none is a 500 and
 * none is lost. On a cluster of its own, since it kills a node.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectNats,
  createHttpApi,
  defineWorkflow,
  DurableClient,
  engineNames,
  Processor,
  silentLogger,
  UnavailableError,
  type ServiceInvoker,
} from '../packages/core/src/index.js';
import { type NatsCluster, ownClusterPorts, startCluster } from './support/nats-cluster.js';

type Connection = Awaited<ReturnType<typeof connectNats>>;

const namespace = 'election';
const names = engineNames(namespace);
const noServices: ServiceInvoker = {
  call: async () => Promise.reject(new Error('no services here')),
  close: () => undefined,
};
const double = defineWorkflow<{ n: number }, number>('el_double', async (ctx, { n }) => ctx.run('double', () => n * 2));

/** Submissions made after the node is gone, on each path: they meet the election. */
const AFTER_LOSS = 10;

let cluster: NatsCluster;
let processorNc: Connection;
let clientNc: Connection;
let processor: Processor;
let client: DurableClient;
let http: ReturnType<typeof createHttpApi>;

beforeAll(async () => {
  // Three ports past the suite's cluster (which uses DURABLE_TEST_NATS_PORT + 0..2).
  const offset = 3;
  cluster = await startCluster({
    ...ownClusterPorts(offset),
  });
  processorNc = await connectNats({ servers: cluster.urls, maxAttempts: 3 });
  clientNc = await connectNats({ servers: cluster.urls, maxAttempts: 3 });
  processor = await Processor.start({ nc: processorNc, namespace, workflows: [double], services: noServices, logger: silentLogger() });
  client = await DurableClient.connect({ nc: clientNc, namespace });
  http = createHttpApi({ client });
}, 120_000);

afterAll(async () => {
  await processor?.stop();
  await processorNc?.close();
  await clientNc?.close();
  await cluster?.stop();
});

/** What became of one submission. */
type Answer = { path: 'client' | 'http'; invocationId?: string; status: number; retryAfter?: string | null; error?: string };

async function submitByClient(n: number): Promise<Answer> {
  try {
    const { invocationId } = await client.submit(double, { n });
    return { path: 'client', invocationId, status: 202 };
  } catch (err) {
    if (err instanceof UnavailableError) return { path: 'client', status: 503, retryAfter: String(Math.ceil(err.retryAfterMs / 1000)) };
    return { path: 'client', status: 500, error: String(err) };
  }
}

async function submitByHttp(n: number): Promise<Answer> {
  const res = await http.request(`/api/workflows/el_double/invoke`, { method: 'POST', body: JSON.stringify({ n }) });
  const body = (await res.json()) as { invocation_id?: string; error?: string };
  return {
    path: 'http',
    status: res.status,
    retryAfter: res.headers.get('Retry-After'),
    ...(body.invocation_id ? { invocationId: body.invocation_id } : {}),
    ...(body.error ? { error: body.error } : {}),
  };
}

/** Submits one after the other until the node is gone, then AFTER_LOSS more. */
async function keepSubmitting(submit: (n: number) => Promise<Answer>, gone: () => boolean): Promise<Answer[]> {
  const answers: Answer[] = [];
  let after = 0;
  for (let n = 0; after < AFTER_LOSS; n++) {
    if (gone()) after++;
    answers.push(await submit(n));
  }
  return answers;
}

describe('a leader election of the COMMANDS stream', () => {
  it('loses no submission, and answers none with a 500', async () => {
    // Before: everything in place and answering.
    expect((await submitByClient(1)).status).toBe(202);
    const first = await submitByHttp(2);
    expect(first.status).toBe(202);
    expect((await client.waitForResult(first.invocationId ?? '')).status).toBe('completed');

    const jsm = await jetstreamManager(clientNc);
    const leader = (await jsm.streams.info(names.commandsStream)).cluster?.leader ?? '';
    const down = Number(/^nats-(\d)$/.exec(leader)?.[1]) - 1;
    expect(down).toBeGreaterThanOrEqual(0);

    let gone = false;
    const killed = cluster.stopNode(down, { kill: true }).then(() => {
      gone = true;
    });
    const [byClient, byHttp] = await Promise.all([keepSubmitting(submitByClient, () => gone), keepSubmitting(submitByHttp, () => gone)]);
    await killed;
    await cluster.startNode(down);

    const answers = [...byClient, ...byHttp];
    const refused = answers.filter((a) => a.status !== 202);
    for (const answer of refused) expect(answer, JSON.stringify(answer)).toMatchObject({ status: 503, retryAfter: expect.stringMatching(/^[1-9][0-9]*$/) });
    const accepted = answers.filter((a) => a.status === 202);
    const ended = await Promise.all(accepted.map((a) => client.waitForResult(a.invocationId ?? '', { timeoutMs: 90_000 })));
    expect(ended.map((state) => state.status)).toEqual(accepted.map(() => 'completed'));
  }, 180_000);
});
