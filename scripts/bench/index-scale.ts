/**
 * Listing and counting at scale: fills the execution index of a cluster the engine was set
 * up on with `n` synthetic invocations, then times the client's list pages and stats.
 *
 * Each invocation gets what the engine itself would have stored for it: its index entry
 * (`<indexSubject>.<status>.<handler token>.<id>`, the JSON payload the index writes) and
 * its state in the state bucket (a protobuf ExecutionState, published on the bucket's
 * subject as a KV put is), both pipelined. One entry in ten is written twice, so that the
 * stream holds removed sequences among its entries as a live one does (the server's
 * counts take slower paths then). A list page checks every entry it reads against its
 * state and drops an entry without one, so every entry has its state: the pages read what
 * a real index of that size holds, and change nothing.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { DurableClient, engineNames, indexEntrySubject, registerWorkflows, type IndexPayload } from '../../packages/core/src/index.js';
import { encodeCursor } from '../../packages/core/src/client/query.js';
import { ExecutionStateSchema, StatusChangeSchema } from '../../packages/core/src/gen/durable/durable_pb.js';
import { type Latency, latency, nowMs } from './stats.js';

/** Options of {@link indexScale}. */
export interface IndexScaleOptions {
  /** Invocations in the index. */
  n: number;
  /** Timed runs of each query, after {@link IndexScaleOptions.warmup}. @default 50 */
  repeats?: number;
  /** Untimed runs of each query first (the first of them is reported on its own). @default 3 */
  warmup?: number;
  /** Publishes in flight while filling. @default 1024 */
  inFlight?: number;
  /** The engine's namespace. @default '' */
  namespace?: string;
  /** Progress lines. @default none */
  progress?: (message: string) => void;
}

/** One timed query. */
export interface QueryFigure {
  query: string;
  /** The first run, ms: what the first query of a process pays (consumers made, counts counted). */
  firstMs: number;
  latency: Latency;
  /** Invocations the query returned (a page) or counted (stats), the last time. */
  returned: number;
}

/** What {@link indexScale} measured. */
export interface IndexScaleFigures {
  fill: FillFigures;
  queries: QueryFigure[];
}

/** The synthetic workflows, with the share of invocations each gets (in tenths). */
const HANDLERS = [
  { name: 'scale_order', tenths: 4 },
  { name: 'scale_payment', tenths: 3 },
  { name: 'scale.mail', tenths: 2 }, // a '.' in the name: its token is escaped
  { name: 'scale_report', tenths: 1 },
] as const;

/** Statuses by share, in per ten thousand: mostly ended, a few waiting, paused ones rare. */
const STATUS_SHARES = [
  { status: 'completed', per10k: 8_000 },
  { status: 'failed', per10k: 1_000 },
  { status: 'suspended', per10k: 600 },
  { status: 'running', per10k: 200 },
  { status: 'pending', per10k: 190 },
  { status: 'paused', per10k: 10 },
] as const;

/** The status and handler of the `i`-th invocation: spread evenly over the stream. */
function shapeOf(i: number): { status: string; handler: string } {
  // Spread by a multiplicative hash, so that every status shows up all along the stream.
  const slot = Math.imul(i + 1, 2654435761) >>> 0;
  let bucket = slot % 10_000;
  let status: string = 'completed';
  for (const share of STATUS_SHARES) {
    if (bucket < share.per10k) {
      status = share.status;
      break;
    }
    bucket -= share.per10k;
  }
  let tenth = (slot >>> 14) % 10;
  let handler: string = HANDLERS[0].name;
  for (const h of HANDLERS) {
    if (tenth < h.tenths) {
      handler = h.name;
      break;
    }
    tenth -= h.tenths;
  }
  return { status, handler };
}

function invocationIdOf(i: number): string {
  return `scale-${i.toString(36).padStart(6, '0')}`;
}

/** The state the engine would hold for an invocation in this status (output, error, history). */
function stateOf(i: number, status: string, handler: string, createdAtMs: number): Uint8Array {
  const ended = status === 'completed' || status === 'failed';
  const updatedAtMs = createdAtMs + 40;
  return toBinary(
    ExecutionStateSchema,
    create(ExecutionStateSchema, {
      invocationId: invocationIdOf(i),
      handler,
      status,
      partitionKey: `customer-${i % 1_000}`,
      service: 'ScaleService',
      input: new TextEncoder().encode(JSON.stringify({ order: i, items: ['a', 'b'] })),
      ...(status === 'completed' ? { currentState: new TextEncoder().encode(JSON.stringify({ ok: true, order: i })) } : {}),
      ...(status === 'failed' ? { error: 'card declined', errorCode: 1 } : {}),
      currentStep: ended ? -1 : 1,
      journalLength: 2,
      createdAtMs: BigInt(createdAtMs),
      updatedAtMs: BigInt(updatedAtMs),
      ...(ended ? { endedAtMs: BigInt(updatedAtMs) } : {}),
      statusHistory: [
        create(StatusChangeSchema, { status: 'pending', atMs: BigInt(createdAtMs) }),
        create(StatusChangeSchema, { status, atMs: BigInt(updatedAtMs) }),
      ],
    }),
  );
}

/** What {@link fillIndex} did. */
export interface FillFigures {
  n: number;
  /** How long filling took, s, and at what rate of invocations (two publishes each). */
  seconds: number;
  perSecond: number;
  /** Messages the index stream and the state bucket hold afterwards. */
  indexMessages: number;
  stateMessages: number;
}

/**
 * Fills the index and the state bucket with `n` invocations (see the module doc). The
 * engine must be set up on `nc`'s cluster (`setupEngine`) and hold none of these IDs.
 */
export async function fillIndex(nc: NatsConnection, options: IndexScaleOptions): Promise<FillFigures> {
  const { n, inFlight = 1024, namespace = '' } = options;
  const progress = options.progress ?? (() => undefined);
  const names = engineNames(namespace);
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  await registerWorkflows(nc, names, HANDLERS.map((h) => h.name));

  progress(`filling the index and the state bucket with ${n.toLocaleString('en-US')} invocations, ${inFlight} publishes in flight`);
  const encoder = new TextEncoder();
  const firstCreated = Date.now() - n * 10;
  const start = nowMs();
  let next = 0;
  let lastReport = start;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < n; i = next++) {
      const { status, handler } = shapeOf(i);
      const id = invocationIdOf(i);
      const createdAtMs = firstCreated + i * 10;
      const payload: IndexPayload = { created_at_ms: createdAtMs, updated_at_ms: createdAtMs + 40, partition_key: `customer-${i % 1_000}` };
      const entry = indexEntrySubject(names, status, handler, id);
      const data = encoder.encode(JSON.stringify(payload));
      await Promise.all([
        js.publish(`$KV.${names.stateBucket}.${id}`, stateOf(i, status, handler, createdAtMs), { retries: 5 }),
        // One in ten entries is written twice, as a same-status write does: the stream then
        // holds deleted sequences among its entries, as a live index does.
        js.publish(entry, data, { retries: 5 }).then(() => (i % 10 === 0 ? js.publish(entry, data, { retries: 5 }) : undefined)),
      ]);
      if (nowMs() - lastReport > 10_000) {
        lastReport = nowMs();
        progress(`  ${i.toLocaleString('en-US')} filled, ${Math.round(i / ((lastReport - start) / 1000)).toLocaleString('en-US')} /s`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.floor(inFlight / 2)) }, worker));
  const seconds = (nowMs() - start) / 1000;
  const indexMessages = (await jsm.streams.info(names.indexStream)).state.messages;
  const stateMessages = (await jsm.streams.info(`KV_${names.stateBucket}`)).state.messages;
  progress(`filled in ${seconds.toFixed(1)} s: index ${indexMessages.toLocaleString('en-US')} messages, states ${stateMessages.toLocaleString('en-US')}`);
  return { n, seconds, perSecond: n / seconds, indexMessages, stateMessages };
}

/** Times each query `repeats` times through a {@link DurableClient}, over an index {@link fillIndex} filled. */
export async function timeQueries(nc: NatsConnection, options: Omit<IndexScaleOptions, 'n' | 'inFlight'> = {}): Promise<QueryFigure[]> {
  const { repeats = 50, warmup = 3, namespace = '' } = options;
  const progress = options.progress ?? (() => undefined);
  const names = engineNames(namespace);
  const jsm = await jetstreamManager(nc);
  const { state } = await jsm.streams.info(names.indexStream);
  const client = await DurableClient.connect({ nc, namespace });
  // A cursor half way into the index: the page after it reads from the middle of the stream.
  const middle = encodeCursor(state.first_seq + Math.floor((state.last_seq - state.first_seq) / 2));
  const queries: { query: string; run: () => Promise<number> }[] = [
    { query: 'list: first page, no filter', run: async () => (await client.listWorkflows()).invocations.length },
    { query: 'list: status failed (10 %)', run: async () => (await client.listWorkflows({ status: 'failed' })).invocations.length },
    { query: 'list: status paused (0.1 %)', run: async () => (await client.listWorkflows({ status: 'paused' })).invocations.length },
    { query: 'list: status paused, page after page from the start', run: walk(client, undefined, { status: 'paused' }) },
    { query: 'list: workflow scale_report (10 %)', run: async () => (await client.listWorkflows({ handler: 'scale_report' })).invocations.length },
    {
      query: 'list: status failed and workflow scale.mail (2 %)',
      run: async () => (await client.listWorkflows({ status: 'failed', handler: 'scale.mail' })).invocations.length,
    },
    { query: 'list: the same page half way in, again and again', run: async () => (await client.listWorkflows({ cursor: middle })).invocations.length },
    { query: 'list: page after page from half way in (each from the last nextCursor)', run: walk(client, middle, {}) },
    {
      query: 'list: status failed, the same page half way in, again and again',
      run: async () => (await client.listWorkflows({ status: 'failed', cursor: middle })).invocations.length,
    },
    { query: 'list: status failed, page after page from half way in', run: walk(client, middle, { status: 'failed' }) },
    { query: 'stats: every workflow', run: async () => (await client.getWorkflowStats()).total },
    { query: 'stats: workflow scale_report', run: async () => (await client.getWorkflowStats({ handler: 'scale_report' })).total },
  ];
  const figures: QueryFigure[] = [];
  for (const { query, run } of queries) {
    progress(`${query}: ${warmup} warm-up, ${repeats} timed`);
    const t0 = nowMs();
    let returned = await run();
    const firstMs = nowMs() - t0;
    for (let i = 1; i < warmup; i++) returned = await run();
    const times: number[] = [];
    for (let i = 0; i < repeats; i++) {
      const t0 = nowMs();
      returned = await run();
      times.push(nowMs() - t0);
    }
    figures.push({ query, firstMs, latency: latency(times), returned });
  }
  return figures;
}

/** A query that reads the page after the one it read last, from `cursor` on (the start when undefined), and again from there at the end. */
function walk(client: DurableClient, cursor: string | undefined, filter: { status?: string }): () => Promise<number> {
  let next = cursor;
  return async () => {
    const page = await client.listWorkflows({ ...filter, ...(next === undefined ? {} : { cursor: next }) });
    next = page.nextCursor ?? cursor;
    return page.invocations.length;
  };
}

/** {@link fillIndex}, then {@link timeQueries}. */
export async function indexScale(nc: NatsConnection, options: IndexScaleOptions): Promise<IndexScaleFigures> {
  const fill = await fillIndex(nc, options);
  return { fill, queries: await timeQueries(nc, options) };
}
