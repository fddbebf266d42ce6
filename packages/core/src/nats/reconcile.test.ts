import { DiscardPolicy, RetentionPolicy, StorageType, type StreamConfig } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { describeChanges, settingChanges, type StreamSettings, type WantedStream } from './reconcile.js';

const NS_PER_DAY = 86_400 * 1e9;

function wanted(name: string, settings: Partial<StreamSettings> = {}): WantedStream {
  return {
    name,
    label: `stream ${name}`,
    settings: { storage: StorageType.File, retention: RetentionPolicy.Limits, num_replicas: 3, subjects: ['journal.>'], ...settings },
    create: async () => undefined,
  };
}

/** A stream's configuration as the server reports one made with the defaults. */
function existing(config: Partial<StreamConfig> = {}): StreamConfig {
  return {
    name: 'JOURNAL',
    subjects: ['journal.>'],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: 3,
    max_msgs: -1,
    max_msgs_per_subject: -1,
    max_bytes: -1,
    max_age: 0,
    discard: DiscardPolicy.Old,
    duplicate_window: 120 * 1e9,
    ...config,
  } as StreamConfig;
}

describe('the settings a stream differs in', () => {
  it('are none when it matches, whatever its defaults look like or its subjects order', () => {
    const stream = existing({ subjects: ['b.>', 'a.>'], max_msgs_per_subject: 0 });
    expect(settingChanges(stream, wanted('JOURNAL', { subjects: ['a.>', 'b.>'], max_msgs_per_subject: -1, max_age: 0, allow_direct: false }))).toEqual([]);
  });

  it('are named and shown the way a line reads them, and settings not asked for are left alone', () => {
    const changes = settingChanges(
      existing({ num_replicas: 1, max_msgs_per_subject: 10, compression: undefined }),
      wanted('KV_EXECUTION_STATE', { max_msgs_per_subject: 1, allow_msg_ttl: true, max_age: 7 * NS_PER_DAY }),
    );
    expect(describeChanges(changes)).toBe('replicas 1 → 3, history 10 → 1, max_age unlimited → 7d, allow_msg_ttl false → true');
    expect(changes.every((c) => c.changeable)).toBe(true);
  });

  it('show a subject transform and a duplicate window', () => {
    const transform = { src: 'commands.*', dest: 'commands.{{partition(16,1)}}.{{wildcard(1)}}' };
    const changes = settingChanges(existing({ duplicate_window: 120 * 1e9 }), wanted('COMMANDS', { subject_transform: transform, duplicate_window: 300 * 1e9 }));
    expect(describeChanges(changes)).toBe('subject_transform none → commands.* to commands.{{partition(16,1)}}.{{wildcard(1)}}, duplicate_window 2m → 5m');
  });

  it('mark what JetStream cannot change: the storage type, and a retention policy to or from work queue', () => {
    const memory = settingChanges(existing({ storage: StorageType.Memory }), wanted('JOURNAL'));
    expect(memory).toMatchObject([{ setting: 'storage', from: 'memory', to: 'file', changeable: false }]);
    const workqueue = settingChanges(existing({ retention: RetentionPolicy.Workqueue }), wanted('JOURNAL'));
    expect(workqueue).toMatchObject([{ setting: 'retention', changeable: false }]);
    const interest = settingChanges(existing({ retention: RetentionPolicy.Interest }), wanted('JOURNAL'));
    expect(interest).toMatchObject([{ setting: 'retention', from: 'interest', to: 'limits', changeable: true }]);
  });
});
