/**
 * Upgrades in place, on the real cluster: starting against streams and buckets an older
 * version made (or a hand misconfigured) brings them to this version's settings where
 * JetStream can change them, with two processors starting at once, keeping what they hold;
 * what cannot be changed stops the start with an error saying what to do, unless it is
 * harmless, when it is a warning.
 */
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { setTimeout as wait } from 'node:timers/promises';
import type { NatsConnection } from '@nats-io/transport-node';
import { pino, type Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ConfigurationError, connectNats, engineNames, Processor, setupEngine, silentLogger } from '../src/index.js';
import { noServices } from './helpers.js';

const NS_PER_MIN = 60 * 1e9;
const NS_PER_DAY = 24 * 60 * NS_PER_MIN;

let nc: NatsConnection;
let otherNc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  const servers = inject('natsUrl').split(',');
  nc = await connectNats({ servers, maxAttempts: 3 });
  otherNc = await connectNats({ servers, maxAttempts: 3 });
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close();
  await otherNc?.close();
});

/** A logger that keeps what it is told, to read what setup said. */
function recorder(): { logger: Logger; said(level: 'info' | 'warn'): string[] } {
  const records: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void records.push(JSON.parse(line) as { level: number; msg: string }) });
  const levels = { info: 30, warn: 40 };
  return { logger, said: (level) => records.filter((r) => r.level === levels[level]).map((r) => r.msg) };
}

/** True once `check` holds, looking again every 100 ms, within 20 s. */
async function until(check: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > deadline) return false;
    await wait(100);
  }
  return true;
}

async function config(stream: string): Promise<StreamConfig> {
  return (await jsm.streams.info(stream)).config;
}

describe('setup against what an older version made', () => {
  it('brings misconfigured streams and buckets to this version, with two processors starting at once, keeping their records', async () => {
    const names = engineNames('upgrade');
    const transform = { src: `${names.commandsSubject}.*`, dest: `${names.commandsSubject}.{{partition(4,1)}}.{{wildcard(1)}}` };
    // One replica each on a 3-node cluster, the state bucket with history 10, no TTLs, dead
    // letters kept for ever, and a command stream from before the timers moved into it.
    await jsm.streams.add({ name: names.commandsStream, subjects: [transform.src], subject_transform: transform, retention: RetentionPolicy.Workqueue, storage: StorageType.File, num_replicas: 1 });
    // A partition's consumer from before partitions had an owner.
    await jsm.consumers.add(names.commandsStream, { durable_name: 'processor-1-p0', ack_policy: AckPolicy.Explicit, ack_wait: 30 * 1e9, filter_subject: `${names.commandsSubject}.0.>` });
    await jsm.streams.add({ name: names.journalStream, subjects: [`${names.journalSubject}.>`], storage: StorageType.File, num_replicas: 1, allow_direct: true });
    await jsm.streams.add({ name: names.deadLetterStream, subjects: [`${names.deadLetterSubject}.>`], storage: StorageType.File, num_replicas: 1 });
    const kvm = new Kvm(nc);
    const oldStates = await kvm.create(names.stateBucket, { history: 10, replicas: 1, storage: StorageType.File });
    await kvm.create(names.keyedStateBucket, { history: 5, replicas: 1, storage: StorageType.File });
    for (const revision of ['one', 'two', 'three']) await oldStates.put('inv-1', revision);
    await jetstream(nc).publish(`${names.journalSubject}.inv-1`, 'step 0');

    const [a, b] = [recorder(), recorder()];
    const [first, second] = await Promise.all([
      setupEngine(nc, { namespace: 'upgrade', logger: a.logger }),
      setupEngine(otherNc, { namespace: 'upgrade', logger: b.logger }),
    ]);

    expect(await config(names.commandsStream)).toMatchObject({
      num_replicas: 3,
      retention: RetentionPolicy.Workqueue,
      subject_transform: transform,
      subjects: [transform.src, `${names.timersSubject}.>`],
      allow_msg_schedules: true,
      duplicate_window: 5 * NS_PER_MIN,
    });
    expect([first.partitions, second.partitions]).toEqual([4, 4]);
    // The old consumer is brought to this version's and follows its stream to 3 replicas.
    const consumer = await jsm.consumers.info(names.commandsStream, 'processor-1-p0');
    expect(consumer.config).toMatchObject({ ack_wait: 8 * 1e9, priority_groups: ['owner'], priority_policy: 'pinned_client' });
    expect(await until(async () => (await jsm.consumers.info(names.commandsStream, 'processor-1-p0')).cluster?.replicas?.length === 2)).toBe(true);
    expect(await config(names.journalStream)).toMatchObject({ num_replicas: 3, allow_msg_ttl: true, allow_direct: true });
    expect(await config(names.deadLetterStream)).toMatchObject({ num_replicas: 3, allow_msg_ttl: true, max_age: 7 * NS_PER_DAY });
    for (const bucket of [names.stateBucket, names.keyedStateBucket, names.awakeablesBucket]) {
      expect(await config(`KV_${bucket}`), bucket).toMatchObject({ num_replicas: 3, max_msgs_per_subject: 1, allow_msg_ttl: true, storage: StorageType.File });
    }

    // What they held is still there; the state's older revisions went with history 1.
    expect((await first.stateKv.get('inv-1'))?.string()).toBe('three');
    const revisions: string[] = [];
    for await (const entry of await first.stateKv.history({ key: 'inv-1' })) revisions.push(entry.string());
    expect(revisions).toEqual(['three']);
    expect((await jsm.streams.getMessage(names.journalStream, { last_by_subj: `${names.journalSubject}.inv-1` }))?.string()).toBe('step 0');

    // One line per resource changed, naming what changed (by whichever processor changed it).
    const updated = [...a.said('info'), ...b.said('info')].filter((line) => line.startsWith('Updated '));
    expect(new Set(updated)).toEqual(
      new Set([
        `Updated stream UPGRADE_COMMANDS: replicas 1 → 3, subjects [upgrade.commands.*] → [upgrade.commands.*, upgrade.timers.>], duplicate_window 2m → 5m, allow_msg_schedules false → true`,
        'Updated stream UPGRADE_JOURNAL: replicas 1 → 3, allow_msg_ttl false → true',
        'Updated stream UPGRADE_DEAD_LETTERS: replicas 1 → 3, max_age unlimited → 7d, allow_msg_ttl false → true',
        'Updated bucket UPGRADE_EXECUTION_STATE: replicas 1 → 3, history 10 → 1, allow_msg_ttl false → true',
        'Updated bucket UPGRADE_KEYED_STATE: replicas 1 → 3, history 5 → 1, allow_msg_ttl false → true',
      ]),
    );

    // Once reconciled, a start changes nothing; a partition count that differs from the
    // stream's is warned about, and the stream's stays.
    const again = recorder();
    const third = await setupEngine(nc, { namespace: 'upgrade', partitions: 8, logger: again.logger });
    expect(third.partitions).toBe(4);
    expect(again.said('info').filter((line) => line.startsWith('Updated '))).toEqual([]);
    // A work queue an earlier version made stays one, and says so; its processors do not trim it.
    expect(third.trimCommands).toBe(false);
    expect(again.said('info')).toContain(
      'Stream UPGRADE_COMMANDS is a work queue (made by an earlier version) and stays one: it works as it is, at a higher cost to the servers (see README, Upgrading)',
    );
    expect(again.said('warn')).toEqual([
      'Stream UPGRADE_COMMANDS keeps its 4 partitions (8 asked): the count is fixed when the stream is created; to change it, drain the stream, delete it and start a processor again',
    ]);
  });

  it('stops with a ConfigurationError saying what to do when a stream uses memory storage', async () => {
    const names = engineNames('upgrademem');
    await jsm.streams.add({ name: names.journalStream, subjects: [`${names.journalSubject}.>`], storage: StorageType.Memory, num_replicas: 3 });
    const setup = setupEngine(nc, { namespace: 'upgrademem', logger: silentLogger() });
    await expect(setup).rejects.toThrow(ConfigurationError);
    await expect(setup).rejects.toThrow(
      'stream UPGRADEMEM_JOURNAL uses memory storage; this version needs file storage, which JetStream cannot change in place: back up or drain what it holds, delete it (nats stream rm UPGRADEMEM_JOURNAL) and start a processor again, which creates it anew',
    );
  });

  it('stops with a ConfigurationError when the server refuses a change the engine needs', async () => {
    const names = engineNames('upgradeclash');
    const transform = { src: `${names.commandsSubject}.*`, dest: `${names.commandsSubject}.{{partition(4,1)}}.{{wildcard(1)}}` };
    await jsm.streams.add({ name: names.commandsStream, subjects: [transform.src], subject_transform: transform, retention: RetentionPolicy.Workqueue, storage: StorageType.File, num_replicas: 3 });
    // Another stream holds the timers' subjects the command stream needs.
    await jsm.streams.add({ name: 'UPGRADECLASH_SQUATTER', subjects: [`${names.timersSubject}.>`], storage: StorageType.File, num_replicas: 1 });
    const setup = setupEngine(nc, { namespace: 'upgradeclash', logger: silentLogger() });
    await expect(setup).rejects.toThrow(ConfigurationError);
    await expect(setup).rejects.toThrow(
      /^could not update stream UPGRADECLASH_COMMANDS \(subjects \[upgradeclash\.commands\.\*\] → \[upgradeclash\.commands\.\*, upgradeclash\.timers\.>\], duplicate_window 2m → 5m, allow_msg_schedules false → true\): nats-server refused it: .*overlap.*; change it by hand \(nats stream edit UPGRADECLASH_COMMANDS\) or back up or drain/,
    );
  });

  it('warns and goes on when what cannot be changed is harmless: the processors bucket in memory', async () => {
    const names = engineNames('upgradeharmless');
    await new Kvm(nc).create(names.processorsBucket, { history: 1, replicas: 3, storage: StorageType.Memory, ttl: 60_000 });
    const log = recorder();
    // Through the processor, which passes its dead-letter retention on.
    const processor = await Processor.start({ nc, namespace: 'upgradeharmless', workflows: [], services: noServices, logger: log.logger, deadLetterRetentionMs: 90 * 60_000 });
    await processor.stop();
    expect(log.said('warn')).toContain(
      'bucket UPGRADEHARMLESS_PROCESSORS uses memory storage; this version needs file storage, which JetStream cannot change in place; it holds only heartbeats, which the processors write again every second, so it works as it is (delete it while no processor runs to have it created anew)',
    );
    expect(await config(names.deadLetterStream)).toMatchObject({ max_age: 90 * NS_PER_MIN, duplicate_window: 2 * NS_PER_MIN });

    // Dead letters kept for good from now on.
    const forGood = recorder();
    await setupEngine(nc, { namespace: 'upgradeharmless', deadLetterRetentionMs: 0, logger: forGood.logger });
    expect(forGood.said('info')).toContain('Updated stream UPGRADEHARMLESS_DEAD_LETTERS: max_age 1h30m → unlimited');
    expect((await config(names.deadLetterStream)).max_age).toBe(0);
  });
});
