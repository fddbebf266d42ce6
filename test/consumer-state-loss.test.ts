/**
 * The partitions' consumers keep their delivery state in memory (see
 * packages/core/src/nats/setup.ts): with every server of the cluster killed at once, they
 * come back with none and deliver the commands still in the stream again, each as a first
 * delivery. Nothing is lost or recorded twice for that: runs under way when the servers went
 * end once, with each step journaled once and run at most once more; invocations that ended
 * and were acknowledged before are not run again, even when their command comes back (the
 * stream's removal of an acknowledged command can be lost with the servers: the test puts
 * one back). On a cluster of its own, since it kills it.
 */
import { once } from 'node:events';
import { type AddressInfo, createConnection, createServer, type Server, type Socket } from 'node:net';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, headers, type Msg } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats, decodeJson, defineWorkflow, DurableClient, engineNames, Processor, silentLogger, type ServiceInvoker } from '../packages/core/src/index.js';
import { partitionConsumer } from '../packages/core/src/nats/setup.js';
import { type NatsCluster, ownClusterPorts, startCluster } from './support/nats-cluster.js';

/** Ports past the suite's cluster (+0..2) and those of the other files with a cluster of their own (+3..11). */
const OFFSET = 12;
const namespace = 'statelost';
const names = engineNames(namespace);
const PARTITIONS = 4;
const noServices: ServiceInvoker = {
  call: async () => Promise.reject(new Error('no services here')),
  close: () => undefined,
};

/** How often each invocation's first step ran its side effect. */
const effects = new Map<string, number>();
/** Held open until the servers are back: the runs under way wait at their second step. */
let openGate: () => void = () => undefined;
const gate = new Promise<void>((resolve) => (openGate = resolve));
const atGate = new Set<string>();
let gateReached: () => void = () => undefined;

const IN_FLIGHT = 6;
const allAtGate = new Promise<void>((resolve) => (gateReached = resolve));

const quick = defineWorkflow<{ n: number }, number>('sl_quick', async (ctx, { n }) => {
  await ctx.run('effect', () => effects.set(ctx.invocationId, (effects.get(ctx.invocationId) ?? 0) + 1));
  return n;
});

const held = defineWorkflow<{ n: number }, number>('sl_held', async (ctx, { n }) => {
  await ctx.run('effect', () => effects.set(ctx.invocationId, (effects.get(ctx.invocationId) ?? 0) + 1));
  await ctx.run('wait', async () => {
    atGate.add(ctx.invocationId);
    if (atGate.size === IN_FLIGHT) gateReached();
    await gate;
  });
  return n * 2;
});

/**
 * A TCP relay to one server that can turn connections away: the processor reaches the
 * cluster through it alone, so that while it is shut, nothing of the processor reaches the
 * consumers.
 */
class Relay {
  #open = true;
  readonly #sockets = new Set<Socket>();
  readonly #server: Server;

  private constructor(target: URL) {
    this.#server = createServer((down) => {
      if (!this.#open) return void down.destroy();
      const up = createConnection(Number(target.port), target.hostname);
      const close = (): void => {
        down.destroy();
        up.destroy();
      };
      for (const socket of [down, up]) {
        this.#sockets.add(socket);
        socket.on('error', close).on('close', () => {
          this.#sockets.delete(socket);
          close();
        });
      }
      down.pipe(up).pipe(down);
    });
  }

  static async start(target: string): Promise<Relay> {
    const relay = new Relay(new URL(target));
    relay.#server.listen(0, '127.0.0.1');
    await once(relay.#server, 'listening');
    return relay;
  }

  get url(): string {
    return `nats://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Turns new connections away from now on (those open now end with their server). */
  shut(): void {
    this.#open = false;
  }

  open(): void {
    this.#open = true;
  }

  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    this.#server.close();
    await once(this.#server, 'close');
  }
}

type Connection = Awaited<ReturnType<typeof connectNats>>;
let cluster: NatsCluster;
let processorNc: Connection;
let clientNc: Connection;
let processor: Processor;
let relay: Relay;
let client: DurableClient;

beforeAll(async () => {
  cluster = await startCluster({
    ...ownClusterPorts(OFFSET),
  });
  relay = await Relay.start(cluster.urls[0]!);
  processorNc = await connect({ servers: [relay.url], ignoreClusterUpdates: true, maxReconnectAttempts: -1, reconnectTimeWait: 500 });
  clientNc = await connectNats({ servers: cluster.urls, maxAttempts: 3 });
  processor = await Processor.start({
    nc: processorNc,
    namespace,
    partitions: PARTITIONS,
    workflows: [quick, held],
    services: noServices,
    logger: silentLogger(),
    ackWaitSeconds: 4,
  });
  client = await DurableClient.connect({ nc: clientNc, namespace });
}, 120_000);

afterAll(async () => {
  openGate();
  await processor?.stop();
  await processorNc?.close();
  await clientNc?.close();
  await relay?.stop();
  await cluster?.stop();
});

/** The partitions' consumers, summed: deliveries made, deliveries acknowledged (their ack floors), and deliveries waiting for an ack. */
interface ConsumerStates {
  delivered: number;
  acked: number;
  ackPending: number;
}

async function consumerStates(): Promise<ConsumerStates> {
  const jsm = await jetstreamManager(clientNc);
  const states: ConsumerStates = { delivered: 0, acked: 0, ackPending: 0 };
  for (let p = 0; p < PARTITIONS; p++) {
    const info = await jsm.consumers.info(names.commandsStream, partitionConsumer('processor-1', p));
    states.delivered += info.delivered.consumer_seq;
    states.acked += info.ack_floor.consumer_seq;
    states.ackPending += info.num_ack_pending;
  }
  return states;
}

/** {@link consumerStates} once the restarted servers answer. */
async function consumerStatesWhenBack(): Promise<ConsumerStates> {
  let states: ConsumerStates | undefined;
  await expect
    .poll(async () => (states = await consumerStates().catch(() => undefined)) !== undefined, { timeout: 60_000, interval: 250 })
    .toBe(true);
  return states!;
}

describe('the partitions’ consumers losing their state (every server killed at once)', () => {
  it('lose nothing and record nothing twice: runs under way end once, ended ones are not run again', { timeout: 240_000 }, async () => {
    // Ended before the servers go, and acknowledged; their commands as the client sent them.
    const sent: Msg[] = [];
    const copies = clientNc.subscribe(`${names.commandsSubject}.*`, { callback: (_err, msg) => void sent.push(msg) });
    const ended = await Promise.all(Array.from({ length: 5 }, (_, n) => client.submitAndWait(quick, { n })));
    expect(ended.map((e) => e.state.status)).toEqual(Array(5).fill('completed'));
    copies.unsubscribe();
    const comeBack = sent.find((msg) => msg.headers?.get('Nats-Msg-Id') === ended[0]!.invocationId)!;
    expect(comeBack.headers?.get('Durable-Fresh-Id')).toBe('1');
    // Under way when they go: each past its first step, waiting at its second.
    const running = await Promise.all(Array.from({ length: IN_FLIGHT }, (_, n) => client.submit(held, { n }, { partitionKey: `held-${n}` })));
    await allAtGate;
    // Every acknowledgement but those of the runs under way has reached the consumers.
    await expect.poll(async () => (await consumerStates()).ackPending, { timeout: 30_000 }).toBe(IN_FLIGHT);
    const before = await consumerStates();

    // Until the consumers have been looked at, the processor cannot reconnect.
    relay.shut();
    for (let i = 0; i < 3; i++) await cluster.stopNode(i, { kill: true });
    await Promise.all([0, 1, 2].map((i) => cluster.startNode(i)));
    // The consumers started again from nothing: no delivery and no acknowledgement left.
    expect(before).toMatchObject({ acked: ended.length, ackPending: IN_FLIGHT });
    expect(before.delivered).toBeGreaterThanOrEqual(ended.length + IN_FLIGHT);
    expect(await consumerStatesWhenBack()).toEqual({ delivered: 0, acked: 0, ackPending: 0 });
    // An acknowledged command back in the stream, as the client sent it (its ID made by the
    // client), under a message ID of its own so that the stream takes it.
    const again = headers();
    again.set('Durable-Fresh-Id', '1');
    const js = jetstream(clientNc);
    let putBack = 0;
    const putItBack = (): Promise<number> => js.publish(comeBack.subject, comeBack.data, { headers: again, msgID: `${ended[0]!.invocationId}-again` }).then((ack) => (putBack = ack.seq), () => 0);
    await expect.poll(putItBack, { timeout: 60_000, interval: 250 }).toBeGreaterThan(0);
    relay.open();
    openGate();

    const outcomes = await Promise.all(running.map((r) => client.waitForResult(r.invocationId, { timeoutMs: 180_000 })));
    expect(outcomes.map((s) => [s.status, decodeJson(s.currentState)])).toEqual(running.map((_, n) => ['completed', n * 2]));
    for (const { invocationId } of running) {
      const journal = await client.getJournal(invocationId);
      const steps = journal.map((e) => e.stepType);
      expect(new Set(steps).size).toBe(steps.length);
      expect(effects.get(invocationId)).toBeGreaterThanOrEqual(1);
      expect(effects.get(invocationId)).toBeLessThanOrEqual(2);
    }
    // The redelivered commands are all acknowledged in the end, the one put back with them:
    // none is left to come back.
    await expect.poll(async () => (await consumerStates()).ackPending, { timeout: 60_000, interval: 500 }).toBe(0);
    // The one put back among them: acknowledged, it has left the stream.
    const jsm = await jetstreamManager(clientNc);
    const stored = (): Promise<boolean> => jsm.streams.getMessage(names.commandsStream, { seq: putBack }).then((m) => m !== null, () => false);
    await expect.poll(stored, { timeout: 60_000, interval: 500 }).toBe(false);
    for (const { invocationId } of ended) expect(effects.get(invocationId)).toBe(1);
  });
});
