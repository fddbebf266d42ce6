/**
 * A delivery lost on its way to a partition's owner (the connection to a node that died
 * carried it) comes back only after its ack wait; the commands of its key stored after it
 * must not start meanwhile, even on a partition its owner had settled. The lane runs on the
 * suite's cluster, through its real pinned consumer; the test loses one delivery for good
 * between the consumer and the lane, as a dead connection would. The stream keeps
 * acknowledged commands, as the command stream does, and the lane removes them: below the
 * ack floor with a purge, above it (finished behind one still running) one by one, after a
 * while or when it stops.
 */
import { type ConsumerMessages, jetstream, jetstreamManager, type JsMsg, RetentionPolicy } from '@nats-io/jetstream';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connectNats, createLogger } from '../packages/core/src/index.js';
import { OWNER_GROUP } from '../packages/core/src/nats/setup.js';
import { PartitionLane } from '../packages/core/src/processor/partition-lane.js';

type Connection = Awaited<ReturnType<typeof connectNats>>;

const STREAM = 'LANEGAP';
const CONSUMER = 'lanegap-0';
const NS_PER_S = 1_000_000_000;
const DEADLINE_MS = 30_000;

/** Log records of the lane, as they are written. */
const records: Array<{ msg: string }> = [];
/** Stream sequences of the commands, in the order the lane started them. */
const started: number[] = [];
/** Woken at each log record and each start. */
let waiters: Array<() => void> = [];
const happened = (): void => {
  for (const wake of waiters) wake();
  waiters = [];
};

const logger = createLogger({
  level: 'debug',
  format: 'json',
  destination: new Writable({
    write(chunk: Buffer, _encoding, done) {
      records.push(JSON.parse(chunk.toString()) as { msg: string });
      happened();
      done();
    },
  }),
});

/** Resolves once `check` holds, looked at after each log record and start; rejects after the deadline. */
async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`no ${what} within ${DEADLINE_MS} ms: started ${started.join(', ')}`);
    await new Promise<void>((resolve) => {
      waiters.push(resolve);
      // Wakes at the deadline, to fail, if nothing happens before.
      setTimeout(resolve, deadline - Date.now()).unref();
    });
  }
}

/** A run held until its gate opens. */
interface Gate {
  opened: Promise<void>;
  open: () => void;
}
function gate(): Gate {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}
/** The commands on `<stream>.<key>` for these keys run until their gate opens. */
const gates = new Map<string, Gate>([
  ['held', gate()],
  ['last', gate()],
]);

/** The highest sequence up to which the lane has purged the finished commands. */
const removedTo = (): number => Math.max(0, ...records.map((r) => Number(/^Partition 0: removed the finished commands up to (\d+)$/.exec(r.msg)?.[1] ?? 0)));

const settledCount = (): number => records.filter((r) => /^Partition 0 settled$/.test(r.msg)).length;

describe('a partition lane', () => {
  let nc: Connection;
  let lane: PartitionLane;
  /** The stream sequence whose first delivery is lost. */
  let lose = -1;

  beforeAll(async () => {
    nc = await connectNats({ servers: inject('natsUrl').split(','), maxAttempts: 1 });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(STREAM).catch(() => undefined);
    // Limits retention, as the command stream: an acknowledged command stays until the lane removes it.
    await jsm.streams.add({ name: STREAM, subjects: [`${STREAM}.>`], num_replicas: 3, retention: RetentionPolicy.Limits });
    await jsm.consumers.add(STREAM, {
      durable_name: CONSUMER,
      ack_policy: 'explicit',
      ack_wait: 2 * NS_PER_S,
      priority_groups: [OWNER_GROUP],
      priority_policy: 'pinned_client',
      priority_timeout: 4 * NS_PER_S,
    });
    const consumer = await jetstream(nc).consumers.get(STREAM, CONSUMER);
    // The consumer as the server runs it, with one delivery lost between it and the lane.
    const losing = {
      consume: async (options: Parameters<typeof consumer.consume>[0]) => {
        const real = await consumer.consume(options);
        return {
          stop: () => real.stop(),
          close: () => real.close(),
          closed: () => real.closed(),
          status: () => real.status(),
          getProcessed: () => real.getProcessed(),
          getPending: () => real.getPending(),
          getReceived: () => real.getReceived(),
          async *[Symbol.asyncIterator]() {
            for await (const msg of real) {
              if (msg.seq === lose && msg.info.deliveryCount === 1) continue;
              yield msg;
            }
          },
        } as unknown as ConsumerMessages;
      },
    } as unknown as typeof consumer;
    lane = new PartitionLane({
      partition: 0,
      stream: STREAM,
      consumer: losing,
      consumerName: CONSUMER,
      subjectPrefix: STREAM,
      jsm,
      logger,
      maxMessages: 100,
      retryDelayMs: () => 100,
      trim: true,
      handler: {
        decode: (msg: JsMsg) => ({ key: msg.subject.slice(STREAM.length + 1) }),
        run: async (msg: JsMsg) => {
          started.push(msg.seq);
          happened();
          await gates.get(msg.subject.slice(STREAM.length + 1))?.opened;
          return 'ack';
        },
        slot: async () => true,
        release: () => undefined,
      },
    });
    await lane.start();
  });

  afterAll(async () => {
    for (const { open } of gates.values()) open();
    await lane?.stop(1_000);
    await jsm().then((m) => m.streams.delete(STREAM)).catch(() => undefined);
    await nc?.close();
  });

  const jsm = () => jetstreamManager(nc);

  /** Publishes a command whose run is held (`<stream>.<held>`), then one of each key behind it; resolves once those have started. */
  async function behindHeld(held: string, keys: string[]): Promise<{ running: { seq: number }; behind: number[] }> {
    const js = jetstream(nc);
    const running = await js.publish(`${STREAM}.${held}`, held);
    const behind: number[] = [];
    for (const key of keys) behind.push((await js.publish(`${STREAM}.${key}`, key)).seq);
    await until(() => behind.every((seq) => started.includes(seq)), `the commands behind ${held} started`);
    return { running, behind };
  }

  it('does not start a key’s next command while an older one’s delivery was lost', async () => {
    const js = jetstream(nc);
    // A first command settles the partition: from then on, keys go on without asking the stream.
    const warm = await js.publish(`${STREAM}.warm`, 'warm');
    await until(() => started.length >= 1 && settledCount() >= 1, 'first command and settled partition');
    expect(started).toEqual([warm.seq]);

    // Two commands of one key; the first one's delivery is lost (decided before it is
    // stored, so before the lane's open pull can have it: the test alone writes the stream).
    lose = warm.seq + 1;
    const first = await js.publish(`${STREAM}.k`, 'first');
    expect(first.seq).toBe(lose);
    const second = await js.publish(`${STREAM}.k`, 'second');

    await until(() => started.length >= 3, 'three commands started');
    const order = started.filter((seq) => seq === first.seq || seq === second.seq);
    expect(order).toEqual([first.seq, second.seq]);
    // The gap unsettled the partition; once the lost command came back and ran, it settles again.
    await until(() => settledCount() >= 2, 'second settling of the partition');
    // The stream keeps acknowledged commands; the lane removes them once they are all finished.
    await until(() => removedTo() >= second.seq, 'removal of the finished commands');
    expect((await (await jsm()).streams.info(STREAM)).state.messages).toBe(0);
  });

  it('deletes the commands it finished behind one still running, which hold the ack floor', async () => {
    const { running, behind } = await behindHeld('held', ['a', 'b', 'c']);
    // Finished and acknowledged above the floor, which the held command keeps below them:
    // the purge cannot take them, so each is deleted on its own.
    const deleted = (): number[] => records.flatMap((r) => ((r as { deleted?: number[] }).deleted ?? []));
    await until(() => behind.every((seq) => deleted().includes(seq)), 'deletion of the commands finished behind the held one');
    const info = await (await jsm()).streams.info(STREAM);
    expect(info.state.messages).toBe(1);
    expect(info.state.first_seq).toBe(running.seq);
    gates.get('held')!.open();
    await until(() => removedTo() >= running.seq, 'removal of the held command once finished');
    expect((await (await jsm()).streams.info(STREAM)).state.messages).toBe(0);
  });

  it('deletes what it acknowledged above the ack floor when it stops, for the next owner cannot tell it finished', async () => {
    const { running } = await behindHeld('last', ['d', 'e']);
    // Stopped at once, long before a finished command would be deleted on its own; the held
    // command is still running when the grace ends, and stays.
    await lane.stop(500);
    const info = await (await jsm()).streams.info(STREAM);
    expect(info.state.messages).toBe(1);
    expect(info.state.first_seq).toBe(running.seq);
  });
});
