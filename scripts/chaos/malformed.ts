/**
 * Malformed input, sent among the real work: random bytes, truncated protobuf, oversized
 * args, bad IDs and handler names straight onto `commands.>`, bad partition keys through
 * the client, and broken HTTP requests. A command the processor cannot use must not break
 * other work (the other counts show that); a request must get a clear answer: a 4xx, or
 * for the client an `InvalidArgumentError`. Anything else is counted as unclear.
 */
import { randomBytes } from 'node:crypto';
import { create, toBinary } from '@bufbuild/protobuf';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { CommandSchema, type DurableClient, InvalidArgumentError, encodeJson } from '../../packages/core/src/index.js';
import type { Fleet } from './fleet.js';
import { request, processorGone } from './http.js';

/** What the malformed input did. */
export interface MalformedCounts {
  /** Commands published onto `commands.>` that no valid client would send. */
  commands: number;
  /** Requests (HTTP and client calls) that should be refused clearly. */
  requests: number;
  /** Requests answered otherwise: a 5xx, no answer from a live processor, an accepted bad request. */
  unclear: string[];
  /**
   * Invocations the stream took from decodable commands with a valid ID (an unknown handler,
   * broken args, an oversized input): each must end, failed, not be run again and again.
   */
  started: string[];
  /** Of {@link started}, those not ended when the workload had (filled in by the run). */
  notEnded: string[];
}

/** Oversized commands are few: each costs its size on three replicas. */
const MAX_OVERSIZED = 3;
const OVERSIZED_BYTES = 900 * 1024;

/** Sends malformed input every `everyMs` until `until` (a time), in rounds that vary. */
export async function sendMalformed(deps: { nc: NatsConnection; client: DurableClient; fleet: Fleet; everyMs: number; until: number; runId: string }): Promise<MalformedCounts> {
  const counts: MalformedCounts = { commands: 0, requests: 0, unclear: [], started: [], notEnded: [] };
  for (let round = 0; Date.now() < deps.until; round++) {
    await Promise.all([badCommands(deps, round, counts), badClientCalls(deps.client, round, counts), badRequests(deps.fleet, round, counts)]);
    await new Promise((r) => setTimeout(r, deps.everyMs));
  }
  return counts;
}

/** Straight onto the commands stream: what a broken or hostile publisher could send. */
async function badCommands(deps: { nc: NatsConnection; runId: string }, round: number, counts: MalformedCounts): Promise<void> {
  const js = jetstream(deps.nc);
  const id = `chaos-${deps.runId}-junk-${round}`;
  const command = (fields: { invocationId?: string; handler?: string; args?: Uint8Array }) =>
    toBinary(CommandSchema, create(CommandSchema, {
      invocationId: fields.invocationId ?? id,
      handler: fields.handler ?? 'chaos_task',
      args: fields.args ?? encodeJson({ key: 'junk', index: round }),
      partitionKey: `junk-${round}`,
      submittedAtMs: BigInt(Date.now()),
    }));
  const valid = command({});
  const payloads: { data: Uint8Array; starts?: string }[] = [
    { data: randomBytes(1 + Math.floor(Math.random() * 200)) },
    { data: valid.subarray(0, Math.max(1, Math.floor(valid.length / 2))) },
    { data: command({ invocationId: `${id} bad.id*>` }) },
    { data: command({ handler: 'chaos task.*>' }), starts: id },
    { data: command({ invocationId: '' }) },
    { data: command({ invocationId: `${id}-args`, args: new TextEncoder().encode('{"key": truncated') }), starts: `${id}-args` },
  ];
  if (round < MAX_OVERSIZED) payloads.push({ data: command({ invocationId: `${id}-big`, args: encodeJson({ key: 'x'.repeat(OVERSIZED_BYTES) }) }), starts: `${id}-big` });
  for (const { data, starts } of payloads) {
    counts.commands++;
    // Whether the stream stores it does not matter; what the processors make of it does.
    const stored = await js.publish(`commands.junk-${round}`, data).then(() => true, () => false);
    if (stored && starts !== undefined && !counts.started.includes(starts)) counts.started.push(starts);
  }
}

/** The client refuses bad keys and IDs before anything is sent. */
async function badClientCalls(client: DurableClient, round: number, counts: MalformedCounts): Promise<void> {
  const cases: { partitionKey?: string; invocationId?: string }[] = [
    { partitionKey: `k.${round}` },
    { partitionKey: 'k*' },
    { partitionKey: 'k >' },
    { partitionKey: 'two words' },
    { invocationId: `bad id.${round}` },
  ];
  for (const options of cases) {
    counts.requests++;
    try {
      await client.submit('chaos_task', { key: 'bad', index: round }, options);
      counts.unclear.push(`client accepted ${JSON.stringify(options)}`);
    } catch (err) {
      if (!(err instanceof InvalidArgumentError)) counts.unclear.push(`client refused ${JSON.stringify(options)} with ${err instanceof Error ? err.name : String(err)}`);
    }
  }
}

/** Broken HTTP requests to a live processor; each must be a 4xx. */
async function badRequests(fleet: Fleet, round: number, counts: MalformedCounts): Promise<void> {
  const invoke = '/api/workflows/chaos_task/invoke';
  const cases: { method: 'GET' | 'POST'; path: string; body?: string; headers?: Record<string, string> }[] = [
    { method: 'POST', path: invoke, body: '{"key": "x", ' },
    { method: 'POST', path: `${invoke}?partition_key=${encodeURIComponent('a.b c*')}`, body: '{}' },
    { method: 'POST', path: invoke, body: '{}', headers: { 'Idempotency-Key': `bad id.*>${round}` } },
    { method: 'POST', path: `/api/workflows/${encodeURIComponent('no such.handler*')}/invoke`, body: '{}' },
    { method: 'GET', path: `/api/workflows/${encodeURIComponent(' bad.id>')}` },
    { method: 'POST', path: `/api/awakeables/awk_9_nobody-${round}/resolve`, body: '{"result": 1}' },
    { method: 'POST', path: '/api/awakeables/garbage/resolve', body: '[]' },
  ];
  if (round < MAX_OVERSIZED) cases.push({ method: 'POST', path: invoke, body: JSON.stringify({ key: 'y'.repeat(2 * 1024 * 1024) }) });
  for (const c of cases) {
    const port = fleet.httpPorts()[round % Math.max(1, fleet.httpPorts().length)];
    if (port === undefined) return;
    counts.requests++;
    const outcome = await request(port, c.method, c.path, { ...(c.body !== undefined ? { body: c.body } : {}), ...(c.headers ? { headers: c.headers } : {}) });
    if (processorGone(outcome)) continue;
    if ('status' in outcome && outcome.status >= 400 && outcome.status < 500) continue;
    const answer = 'status' in outcome ? `${outcome.status} ${outcome.body.slice(0, 120)}` : outcome.error;
    counts.unclear.push(`${c.method} ${c.path.slice(0, 80)}${c.body && c.body.length > 1_000 ? ` (${c.body.length} bytes)` : ''}: ${answer}`);
  }
}
