/**
 * Several processors share one deployment: each partition of the command stream has one
 * owner at a time, the owners change as processors join and leave under load, and still the
 * invocations of one partition key start in submission order, each only once the one before
 * it has finished its run, never beside it on another processor; and the commands they
 * finish leave the stream.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { setTimeout as pause } from 'node:timers/promises';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats, DurableClient, Processor, defineWorkflow, engineNames, silentLogger, type AnyWorkflow } from '../src/index.js';
import { jetstreamManager, RetentionPolicy } from '@nats-io/jetstream';
import { noServices, untilChanged } from './helpers.js';

const namespace = 'manytest';
const names = engineNames(namespace);
/** More partitions than processors, so each owns several. */
const PARTITIONS = 8;
const KEYS = 12;
const PER_KEY = 8;

/** When each invocation's first run started and its last run ended, in this process's clock. */
const runs = new Map<string, { key: string; index: number; start: number; end: number; overlapping: boolean }>();
const active = new Map<string, string>(); // key → invocation running now

const ordered = defineWorkflow<{ key: string; index: number }, number>('ordered_step', async (ctx, { key, index }) => {
  const other = active.get(key);
  const record = runs.get(ctx.invocationId) ?? { key, index, start: Date.now(), end: 0, overlapping: false };
  if (other !== undefined && other !== ctx.invocationId) record.overlapping = true;
  runs.set(ctx.invocationId, record);
  active.set(key, ctx.invocationId);
  // Two steps with a turn of the clock between them: room for a second run of the key to slip in.
  await ctx.run('first', async () => {
    await pause(30);
    return index;
  });
  await ctx.run('second', () => index);
  record.end = Date.now();
  if (active.get(key) === ctx.invocationId) active.delete(key);
  return index;
});

interface Member {
  processor: Processor;
  nc: NatsConnection;
}

const members: Member[] = [];
let client: DurableClient;
let clientNc: NatsConnection;
const servers = () => inject('natsUrl').split(',');

/** A workflow only some processors have, as during a rolling deploy. */
const newer = defineWorkflow<{ n: number }, number>('newer_step', async (ctx, { n }) => ctx.run('double', () => n * 2));

async function join(workflows: AnyWorkflow[] = [ordered]): Promise<Member> {
  const nc = await connectNats({ servers: servers(), maxAttempts: 3 });
  const processor = await Processor.start({ nc, namespace, workflows, services: noServices, logger: silentLogger(), ackWaitSeconds: 4, partitions: PARTITIONS });
  const member = { processor, nc };
  members.push(member);
  return member;
}

async function leave(member: Member): Promise<void> {
  members.splice(members.indexOf(member), 1);
  await member.processor.stop();
  await member.nc.close();
}

/**
 * Waits until the live processors own every partition once between them, evenly: shares
 * that differ by one at most (`count` processors).
 */
async function partitionsSettle(count: number): Promise<number[][]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const owned = members.map((m) => m.processor.partitions);
    const all = owned.flat().sort((a, b) => a - b);
    const shares = owned.map((p) => p.length);
    const even = Math.max(...shares) - Math.min(...shares) <= 1;
    if (all.length === PARTITIONS && new Set(all).size === PARTITIONS && even && owned.every((p) => p.length > 0) && owned.length === count) return owned;
    if (Date.now() > deadline) throw new Error(`partitions did not settle: ${JSON.stringify(owned)}`);
    await pause(100);
  }
}

beforeAll(async () => {
  clientNc = await connectNats({ servers: servers(), maxAttempts: 3 });
  await join();
  client = await DurableClient.connect({ nc: clientNc, namespace });
});

afterAll(async () => {
  for (const member of [...members]) await leave(member);
  await clientNc?.close();
});

describe('several processors', () => {
  it('split the partitions between them, and take a leaver’s share', async () => {
    const second = await join();
    await join();
    const owned = await partitionsSettle(3);
    expect(owned.flat().sort((a, b) => a - b)).toEqual([...Array(PARTITIONS).keys()]);
    expect(owned.map((p) => p.length).sort()).toEqual([2, 3, 3]);
    await leave(second);
    expect((await partitionsSettle(2)).map((p) => p.length)).toEqual([4, 4]);
  });

  it('start the invocations of a key in submission order, one after the other, while processors join and leave', async () => {
    while (members.length < 3) await join();
    const ids: string[][] = [...Array(KEYS)].map(() => []);
    let joined: Member | undefined;
    for (let i = 0; i < PER_KEY; i++) {
      // Under load: a processor joins half-way and another leaves a little later.
      if (i === 2) joined = await join();
      if (i === 5) await leave(members[0]!);
      // One round: every key's next invocation, submitted together; a key's rounds in order.
      const round = await Promise.all(
        ids.map((_, k) => client.submit(ordered, { key: `k${k}`, index: i }, { partitionKey: `order-k${k}` })),
      );
      for (const [k, { invocationId }] of round.entries()) ids[k]!.push(invocationId);
    }
    expect(joined).toBeDefined();
    for (const line of ids) for (const id of line) expect((await client.waitForResult(id, { timeoutMs: 60_000 })).status).toBe('completed');
    const violations: string[] = [];
    for (const line of ids) {
      for (let i = 1; i < line.length; i++) {
        const before = runs.get(line[i - 1]!)!;
        const after = runs.get(line[i]!)!;
        if (after.start < before.end) violations.push(`${after.key}#${after.index} started before #${before.index} ended`);
      }
    }
    expect(violations).toEqual([]);
    expect([...runs.values()].filter((r) => r.overlapping)).toEqual([]);

    // The command stream keeps acknowledged commands; each partition's owner removes them,
    // whichever processor acknowledged them: none is left once all have ended.
    const jsm = await jetstreamManager(clientNc);
    expect((await jsm.streams.info(names.commandsStream)).config.retention).toBe(RetentionPolicy.Limits);
    const stored = async (): Promise<number> => {
      const info = await jsm.streams.info(names.commandsStream, { subjects_filter: `${names.commandsSubject}.>` });
      return Object.values(info.state.subjects ?? {}).reduce((sum, n) => sum + n, 0);
    };
    await untilChanged(clientNc, ['$JS.EVENT.ADVISORY.API', `$JS.ACK.${names.commandsStream}.>`], 'the finished commands removed', async () => (await stored()) === 0);
  });

  it('never fail an invocation of a workflow some live processor has: it waits for one that has it (a rolling deploy)', async () => {
    for (const member of [...members]) await leave(member);
    const old = await join([ordered]);
    await join([ordered, newer]);
    await partitionsSettle(2);
    expect(old.processor.partitions.length).toBeGreaterThan(0);
    // Keys in every partition, so some land on the processor without the workflow.
    const ids = await Promise.all(
      [...Array(32).keys()].map(async (n) => (await client.submit(newer, { n }, { partitionKey: `deploy-${n}` })).invocationId),
    );
    // The old processor leaves (the deploy goes on): its partitions, and what waits there, move.
    await leave(old);
    for (const [n, id] of ids.entries()) {
      const final = await client.waitForResult(id, { timeoutMs: 60_000 });
      expect([final.status, final.error]).toEqual(['completed', '']);
      expect(JSON.parse(new TextDecoder().decode(final.currentState))).toBe(n * 2);
    }
  });
});
