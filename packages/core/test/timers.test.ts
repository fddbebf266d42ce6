/**
 * Durable timers on the real cluster: a sleeping invocation is suspended (no processor
 * holds it), and wakes within a second of its due time, also across a processor restart
 * or kill; no consumer holds a waiting timer; a wake-up before the due time does not keep
 * the timer from waking the invocation when due; a wake-up its timer fires early waits for
 * its time without a run slot.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { type Command, CommandKind, CommandSchema } from '../src/gen/durable/durable_pb.js';
import {
  connectNats,
  decodeJson,
  DurableClient,
  engineNames,
  EntryPhase,
  Processor,
  type ProcessorOptions,
  silentLogger,
} from '../src/index.js';
import { noServices, settles, untilChanged } from './helpers.js';
import { sleeper, sleeperRuns } from './fixtures/sleeper.js';

const namespace = 'timertest';
const names = engineNames(namespace);

let nc: NatsConnection;
let client: DurableClient;

/** A processor on a connection of its own, as in its own process; stopping it closes the connection. */
async function startProcessor(options: Pick<ProcessorOptions, 'maxConcurrent' | 'timerLeadMs'> = {}): Promise<{ processor: Processor; stop: () => Promise<void> }> {
  const own = await connectNats({ servers: inject('natsUrl').split(','), maxAttempts: 3 });
  const processor = await Processor.start({ nc: own, namespace, workflows: [sleeper], services: noServices, logger: silentLogger(), ackWaitSeconds: 5, ...options });
  return {
    processor,
    stop: async () => {
      await processor.stop();
      await own.close();
    },
  };
}


beforeAll(async () => {
  nc = await connectNats({ servers: inject('natsUrl').split(','), maxAttempts: 3 });
  const bootstrap = await startProcessor();
  client = await DurableClient.connect({ nc, namespace });
  await bootstrap.stop();
});

afterAll(async () => {
  await nc?.close();
});

describe('durable sleep', () => {
  it('suspends a sleeping invocation, holding nothing, and wakes it once it is due (how late: make bench)', async () => {
    const { processor, stop } = await startProcessor();
    try {
      const { invocationId } = await client.submit(sleeper, { ms: 2_500 });
      const suspended = await client.waitForStatus(invocationId, 'suspended');
      expect(suspended.owner).toBe('');
      // The run ends (and its command is acknowledged) just after the state is written.
      expect(await settles(() => processor.running === 0)).toBe(true);

      const final = await client.waitForResult(invocationId, { timeoutMs: 15_000 });
      expect(final.status).toBe('completed');
      const { wakeAtMs, wokeAtMs } = decodeJson<{ wakeAtMs: number; wokeAtMs: number }>(final.currentState);
      expect(wokeAtMs).toBeGreaterThanOrEqual(wakeAtMs);
      const sleeps = final.journal.filter((e) => e.stepType === 'SLEEP').map((e) => e.phase);
      expect(sleeps).toEqual([EntryPhase.STARTED, EntryPhase.COMPLETED]);
    } finally {
      await stop();
    }
  });

  it('keeps the timer while no processor runs and fires it once one is up again', async () => {
    const { stop: first } = await startProcessor();
    const { invocationId } = await client.submit(sleeper, { ms: 2_000 });
    await client.waitForStatus(invocationId, 'suspended');
    await first();

    const { stop: second } = await startProcessor();
    try {
      const final = await client.waitForResult(invocationId, { timeoutMs: 15_000 });
      expect(final.status).toBe('completed');
      const { wakeAtMs, wokeAtMs } = decodeJson<{ wakeAtMs: number; wokeAtMs: number }>(final.currentState);
      expect(wokeAtMs).toBeGreaterThanOrEqual(wakeAtMs);
    } finally {
      await second();
    }
  });

  it('holds no waiting timer in any consumer, and fires it after the processor that scheduled it is killed', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/sleeper-processor.ts', import.meta.url))], {
      env: { ...process.env, NATS_URL: inject('natsUrl'), NAMESPACE: namespace },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve());
        child.once('exit', (code) => reject(new Error(`the processor exited with ${code} before it was ready`)));
      });
      const { invocationId } = await client.submit(sleeper, { ms: 4_000 });
      await client.waitForStatus(invocationId, 'suspended', { timeoutMs: 15_000 });

      // The timer waits in the stream: once the start command is acknowledged (with the others
      // finished within 50 ms of it), no consumer of the deployment has anything delivered or pending.
      const jsm = await jetstreamManager(nc);
      const held: string[] = [];
      await untilChanged(nc, [`$JS.ACK.${names.commandsStream}.>`], 'no consumer holds a command', async () => {
        held.length = 0;
        for await (const stream of jsm.streams.list()) {
          if (!stream.config.name.startsWith(`${namespace.toUpperCase()}_`)) continue;
          for await (const consumer of jsm.consumers.list(stream.config.name)) {
            if (consumer.num_ack_pending + consumer.num_pending > 0) held.push(`${stream.config.name}/${consumer.name}`);
          }
        }
        return held.length === 0;
      }, 15_000).catch(() => undefined);
      expect(held).toEqual([]);

      child.kill('SIGKILL');
      await once(child, 'exit');
      const { stop } = await startProcessor();
      try {
        const final = await client.waitForResult(invocationId, { timeoutMs: 15_000 });
        expect(final.status).toBe('completed');
        const { wakeAtMs, wokeAtMs } = decodeJson<{ wakeAtMs: number; wokeAtMs: number }>(final.currentState);
        expect(wokeAtMs).toBeGreaterThanOrEqual(wakeAtMs);
        } finally {
        await stop();
      }
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('wakes the invocation when due after a wake-up came too early (a timer fired before its time)', async () => {
    const { stop } = await startProcessor();
    try {
      const { invocationId } = await client.submit(sleeper, { ms: 4_000 });
      const suspended = await client.waitForStatus(invocationId, 'suspended');
      const sleep = suspended.journal.find((e) => e.stepType === 'SLEEP');
      const { wakeAtMs } = decodeJson<{ wakeAtMs: number }>(sleep?.request ?? new Uint8Array());
      expect(sleeperRuns.get(invocationId)).toBe(1);

      // Its resume command, published early as a processor whose clock runs ahead fired it
      // (with the message ID such a firing carried), and the invocation schedules its timer again.
      const resume = create(CommandSchema, { invocationId, handler: 'sleeper', partitionKey: 'default', kind: CommandKind.RESUME, submittedAtMs: BigInt(Date.now()) });
      await jetstream(nc).publish(`${names.commandsSubject}.default`, toBinary(CommandSchema, resume), { msgID: `${invocationId}:wake:${wakeAtMs}` });
      const rerun = await settles(() => sleeperRuns.get(invocationId) === 2);
      expect(rerun).toBe(true);

      const final = await client.waitForResult(invocationId, { timeoutMs: 15_000 });
      expect(final.status).toBe('completed');
      const { wokeAtMs } = decodeJson<{ wakeAtMs: number; wokeAtMs: number }>(final.currentState);
      expect(wokeAtMs).toBeGreaterThanOrEqual(wakeAtMs);
      expect(final.journal.filter((e) => e.stepType === 'SLEEP').map((e) => e.phase)).toEqual([EntryPhase.STARTED, EntryPhase.COMPLETED]);
    } finally {
      await stop();
    }
  });

  it('holds a wake-up its timer fired early until it is due, in its key\'s line and without a run slot', async () => {
    // One run slot, and the wake-up fired 8 s early (250 ms as shipped): long enough that the
    // order below does not hang on the machine's speed.
    const { stop } = await startProcessor({ maxConcurrent: 1, timerLeadMs: 8_000 });
    const timers: { command: Command; schedule: string }[] = [];
    const sub = nc.subscribe(`${names.timersSubject}.>`, {
      callback: (_err, msg) => {
        timers.push({ command: fromBinary(CommandSchema, msg.data), schedule: msg.headers?.get('Nats-Schedule') ?? '' });
      },
    });
    const jsm = await jetstreamManager(nc);
    try {
      // A fractional duration, as a sleep until a time computed from performance.now() has.
      const { invocationId } = await client.submit(sleeper, { ms: 10_000.5 }, { partitionKey: 'early' });
      const suspended = await client.waitForStatus(invocationId, 'suspended');
      const sleep = suspended.journal.find((e) => e.stepType === 'SLEEP');
      const { wakeAtMs } = decodeJson<{ wakeAtMs: number }>(sleep?.request ?? new Uint8Array());
      const mine = () => timers.filter((t) => t.command.invocationId === invocationId);
      // Scheduled 8 s before it is due, and carrying when it is due.
      expect(mine().map((t) => [t.schedule, t.command.dueAtMs])).toEqual([[`@at ${new Date(wakeAtMs - 8_000).toISOString()}`, BigInt(Math.ceil(wakeAtMs))]]);

      // Fired: the processor holds it (heartbeating it) while the invocation still sleeps.
      const held = async () => {
        let pending = 0;
        for await (const consumer of jsm.consumers.list(names.commandsStream)) pending += consumer.num_ack_pending;
        return pending;
      };
      await untilChanged(nc, [`$JS.ACK.${names.commandsStream}.>`], 'the fired wake-up held by the processor', async () => (await held()) > 0, 30_000);
      expect((await client.getState(invocationId))?.status).toBe('suspended');

      // Another key's invocation takes the one run slot meanwhile.
      const other = await client.submitAndWait(sleeper, { ms: 0 }, { partitionKey: 'other', timeoutMs: 30_000 });
      expect(other.state.status).toBe('completed');
      expect((await client.getState(invocationId))?.status).toBe('suspended');

      const final = await client.waitForResult(invocationId, { timeoutMs: 30_000 });
      expect(final.status).toBe('completed');
      const { wokeAtMs } = decodeJson<{ wakeAtMs: number; wokeAtMs: number }>(final.currentState);
      expect(wokeAtMs).toBeGreaterThanOrEqual(wakeAtMs);
      // Run once when started and once when due: the early firing started no run and set no timer again.
      expect(sleeperRuns.get(invocationId)).toBe(2);
      expect(mine()).toHaveLength(1);
    } finally {
      sub.unsubscribe();
      await stop();
    }
  }, 60_000);
});
