/**
 * A run rides out an election of the leader of the stream it writes to: with the node leading
 * JOURNAL (or the state bucket) killed between a step's side effect and the write that
 * records it, the write waits for the new leader instead of stopping the run, so the side
 * effect is not done again; a run taking an invocation over reads its journal and writes its
 * claim mark through such an election too. On a cluster of its own, since it kills a node.
 */
import { setTimeout as wait } from 'node:timers/promises';
import { create } from '@bufbuild/protobuf';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats, DurableClient, defineWorkflow, engineNames, Processor, silentLogger, type JournalLog, type ServiceInvoker } from '../packages/core/src/index.js';
import { JournalEntrySchema } from '../packages/core/src/gen/durable/durable_pb.js';
import { NatsJournalStore } from '../packages/core/src/nats/journal-store.js';
import { type NatsCluster, nodeName, ownClusterPorts, startCluster } from './support/nats-cluster.js';

type Connection = Awaited<ReturnType<typeof connectNats>>;

const OFFSET = 15;
const namespace = 'writeelection';
const names = engineNames(namespace);
/** The node the test kills, leading the stream written to: neither the processor's nor the other streams' leader. */
const DOOMED = 2;
const noServices: ServiceInvoker = {
  call: async () => Promise.reject(new Error('no services here')),
  close: () => undefined,
};

/** A latch: `open` resolves `opened`. */
function latch(): { opened: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/** How often each step's side effect ran, and the gate step a waits at, for the case under way. */
let effects = { a: 0, b: 0 };
let gate = latch();
let atGate = latch();

const twoSteps = defineWorkflow<Record<string, never>, string>('we_two_steps', async (ctx) => {
  await ctx.run('a', async () => {
    effects.a++;
    atGate.open();
    await gate.opened;
  });
  await ctx.run('b', () => void effects.b++);
  return 'done';
});

let cluster: NatsCluster;
let processorNc: Connection;
let clientNc: Connection;
let processor: Processor;
let client: DurableClient;

/** Asks for `stream`'s leadership to move to `preferred` (servers from 2.11 on take a preferred placement) until its leader is `wanted`. */
async function leadOn(stream: string, wanted: (leader: string) => boolean, preferred: string): Promise<void> {
  const jsm = await jetstreamManager(clientNc);
  const deadline = Date.now() + 60_000;
  for (;;) {
    // A stream between leaders does not answer: asked again.
    const leader = (await jsm.streams.info(stream).catch(() => undefined))?.cluster?.leader ?? '';
    if (wanted(leader)) return;
    if (Date.now() > deadline) throw new Error(`${stream} is still led by ${leader || 'no one'}`);
    await clientNc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${stream}`, JSON.stringify({ placement: { preferred } }), { timeout: 5_000 }).catch(() => undefined);
    await wait(500);
  }
}

beforeAll(async () => {
  cluster = await startCluster({ ...ownClusterPorts(OFFSET) });
  // The processor reaches the cluster through node 0 alone: the kill does not cut it off.
  processorNc = await connect({ servers: [cluster.urls[0]!], ignoreClusterUpdates: true, maxReconnectAttempts: -1, reconnectTimeWait: 500 });
  clientNc = await connectNats({ servers: [cluster.urls[0]!, cluster.urls[1]!], maxAttempts: 3 });
  processor = await Processor.start({ nc: processorNc, namespace, workflows: [twoSteps], services: noServices, logger: silentLogger() });
  client = await DurableClient.connect({ nc: clientNc, namespace });
}, 180_000);

afterAll(async () => {
  gate.open();
  await processor?.stop();
  await processorNc?.close();
  await clientNc?.close();
  await cluster?.stop();
});

/**
 * Runs an invocation whose step a records its outcome in `written` (the first write of a
 * first run is its state's, then the step's append) with `written`'s leader killed while
 * step a's side effect is under way; the node is back at the end.
 */
async function killLeaderUnderStep(written: string): Promise<void> {
  effects = { a: 0, b: 0 };
  gate = latch();
  atGate = latch();
  const doomed = nodeName(DOOMED);
  await leadOn(written, (leader) => leader === doomed, doomed);
  // Everything else the run writes to is led elsewhere.
  const others = [names.commandsStream, `KV_${names.stateBucket}`, names.journalStream, names.indexStream].filter((s) => s !== written);
  for (const stream of others) await leadOn(stream, (leader) => leader !== '' && leader !== doomed, nodeName(0));
  const { invocationId } = await client.submit(twoSteps, {});
  await atGate.opened;
  // Step a's effect is under way and nothing of it recorded: the leader goes now.
  await cluster.stopNode(DOOMED, { kill: true });
  gate.open();
  const final = await client.waitForResult(invocationId, { timeoutMs: 120_000 });
  expect(final.status).toBe('completed');
  expect(effects).toEqual({ a: 1, b: 1 });
  const steps = (await client.getJournal(invocationId)).map((e) => `${e.stepType}:${e.phase}`);
  expect(new Set(steps).size).toBe(steps.length);
  await cluster.startNode(DOOMED);
}

describe('a write during an election of the leader of the stream it goes to', () => {
  it('a journal append waits for the new leader: the run goes on and the step before it is not done again', { timeout: 240_000 }, async () => {
    await killLeaderUnderStep(names.journalStream);
  });

  it('a state write does too (a first run writes its state before its first append)', { timeout: 240_000 }, async () => {
    await killLeaderUnderStep(`KV_${names.stateBucket}`);
  });

  it("a takeover's journal read and claim mark do too: the run taking over gets the journal and appends after its mark", { timeout: 240_000 }, async () => {
    // The processor's own connection, through node 0: the store a run taking over opens journals with.
    const journals = new NatsJournalStore(jetstream(processorNc), await jetstreamManager(processorNc), names);
    const entry = (stepNumber: number, stepType: string) => create(JournalEntrySchema, { stepNumber, stepType });
    // Two invocations run by a processor that then stalls: one taken over by reading its
    // journal, one by a run that knows its journal already (the claim mark alone goes out).
    const [read, known] = [`takeover-read-${Date.now()}`, `takeover-known-${Date.now()}`];
    const stalled = new Map<string, JournalLog>();
    for (const id of [read, known]) {
      stalled.set(id, await journals.open(id, { fresh: true }));
      await stalled.get(id)!.append(entry(0, 'a'));
    }
    const doomed = nodeName(DOOMED);
    await leadOn(names.journalStream, (leader) => leader === doomed, doomed);
    await cluster.stopNode(DOOMED, { kill: true });
    try {
      // Both opened while JOURNAL has no leader.
      const claim = { claim: 'the-processor-taking-over' };
      const taken = await Promise.all([
        journals.open(read, claim),
        journals.open(known, { ...claim, known: { entries: [entry(0, 'a')], lastSequence: stalled.get(known)!.lastSequence } }),
      ]);
      for (const [i, id] of [read, known].entries()) {
        expect(taken[i]!.entries.map((e) => e.stepType)).toEqual(['a']);
        await taken[i]!.append(entry(1, 'b'));
        // The stalled run is refused after the mark.
        await expect(stalled.get(id)!.append(entry(1, 'late'))).rejects.toThrow(/appended to by another processor/);
        expect((await journals.read(id)).entries.map((e) => e.stepType)).toEqual(['a', 'b']);
      }
    } finally {
      await cluster.startNode(DOOMED);
    }
  });
});
