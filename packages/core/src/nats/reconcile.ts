/**
 * Brings a stream, or a KV bucket's stream, to the settings this version of the engine
 * wants. A stream made by an older version (or by hand) is compared with them setting by
 * setting and updated only where one differs, so processors starting together all end at
 * the same configuration, and a start that finds nothing to change writes nothing. What
 * JetStream cannot change in place (the storage type, a retention policy to or from work
 * queue), and a change the server refuses, stop the start with a {@link ConfigurationError}
 * that says what to do, unless it is harmless (see {@link WantedStream.disposable}), when
 * it is a warning.
 */
import {
  JetStreamApiError,
  RetentionPolicy,
  type DiscardPolicy,
  type JetStreamManager,
  type StorageType,
  type StreamConfig,
  type StreamInfo,
  type StreamUpdateConfig,
  type SubjectTransformConfig,
} from '@nats-io/jetstream';
import { formatDuration } from '../config.js';
import { ConfigurationError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { withMetaRetry } from './retry.js';

/** The settings of a stream the engine looks after; one left out is left as it is. */
export interface StreamSettings {
  storage: StorageType;
  retention: RetentionPolicy;
  num_replicas: number;
  subjects: string[];
  subject_transform?: SubjectTransformConfig;
  /** A bucket's history. -1 for no limit. */
  max_msgs_per_subject?: number;
  /** ns, 0 for no limit. */
  max_age?: number;
  /** -1 for no limit. */
  max_bytes?: number;
  discard?: DiscardPolicy;
  /** ns. */
  duplicate_window?: number;
  allow_direct?: boolean;
  /** Per-message TTLs (`Nats-TTL`, nats-server 2.11+); once on, JetStream keeps it on. */
  allow_msg_ttl?: boolean;
  /** ns, 0 for none. */
  subject_delete_marker_ttl?: number;
  /** Scheduled messages (nats-server 2.12+); once on, JetStream keeps it on. */
  allow_msg_schedules?: boolean;
}

/** A stream as this version wants it. */
export interface WantedStream {
  /** The stream's name: `KV_<bucket>` for a bucket. */
  name: string;
  /** How lines and errors name it: `stream JOURNAL`, `bucket EXECUTION_STATE`. */
  label: string;
  settings: StreamSettings;
  /** Creates the stream with these settings; another creating it first is fine. */
  create(): Promise<unknown>;
  /**
   * Why losing the stream's records would be harmless, when it would (heartbeats that are
   * written again every second): a storage type it cannot change is then a warning.
   */
  disposable?: string;
}

/** One setting in which a stream differs from what is wanted. */
export interface SettingChange {
  setting: keyof StreamSettings;
  /** How lines name it: `replicas`, `history` for a bucket, else JetStream's name. */
  name: string;
  from: string;
  to: string;
  /** False for what JetStream cannot change in place. */
  changeable: boolean;
}

/** How each setting is compared (on its normal form) and shown. */
interface Kind {
  normal(value: unknown): unknown;
  show(normal: unknown): string;
}

const asNumber = (value: unknown): number => (typeof value === 'number' ? value : 0);
const word: Kind = { normal: (v) => v ?? '', show: String };
const flag: Kind = { normal: (v) => v === true, show: String };
const limit: Kind = { normal: (v) => (asNumber(v) > 0 ? v : -1), show: (n) => (n === -1 ? 'unlimited' : String(n)) };
const duration = (none: string): Kind => ({
  normal: (v) => Math.max(asNumber(v), 0),
  show: (ns) => (ns === 0 ? none : formatDuration(asNumber(ns) / 1e6)),
});
const KINDS: Record<keyof StreamSettings, Kind> = {
  storage: word,
  retention: word,
  num_replicas: { normal: (v) => Math.max(asNumber(v), 1), show: String },
  subjects: { normal: (v) => (Array.isArray(v) ? [...(v as string[])].sort() : []), show: (s) => `[${(s as string[]).join(', ')}]` },
  subject_transform: {
    normal: (v) => {
      const t = v as SubjectTransformConfig | undefined;
      return t?.src || t?.dest ? `${t.src} to ${t.dest}` : 'none';
    },
    show: String,
  },
  max_msgs_per_subject: limit,
  max_age: duration('unlimited'),
  max_bytes: limit,
  discard: word,
  duplicate_window: duration('none'),
  allow_direct: flag,
  allow_msg_ttl: flag,
  subject_delete_marker_ttl: duration('none'),
  allow_msg_schedules: flag,
};

/**
 * The settings in which `have` differs from what `wanted` asks, in the order of
 * {@link StreamSettings}.
 */
export function settingChanges(have: StreamConfig, wanted: WantedStream): SettingChange[] {
  const changes: SettingChange[] = [];
  for (const setting of Object.keys(KINDS) as Array<keyof StreamSettings>) {
    const want = wanted.settings[setting];
    if (want === undefined) continue;
    const kind = KINDS[setting];
    const [from, to] = [kind.normal(have[setting]), kind.normal(want)];
    if (JSON.stringify(from) === JSON.stringify(to)) continue;
    changes.push({
      setting,
      name: settingName(setting, wanted),
      from: kind.show(from),
      to: kind.show(to),
      changeable: changeableInPlace(setting, have, wanted.settings),
    });
  }
  return changes;
}

/** JetStream changes neither a stream's storage type nor its retention policy to or from work queue. */
function changeableInPlace(setting: keyof StreamSettings, have: StreamConfig, want: StreamSettings): boolean {
  if (setting === 'storage') return false;
  if (setting === 'retention') return have.retention !== RetentionPolicy.Workqueue && want.retention !== RetentionPolicy.Workqueue;
  return true;
}

/** `replicas 1 → 3, allow_msg_ttl false → true` */
export function describeChanges(changes: readonly SettingChange[]): string {
  return changes.map((c) => `${c.name} ${c.from} → ${c.to}`).join(', ');
}

/**
 * JetStream's refusals of an update, as opposed to a cluster between leaders: 10052 invalid
 * configuration, 10069 update error, 10065 subjects overlap, 10055 mirror not updatable,
 * 10061 replicas not updatable, 10074 replicas not supported.
 */
const REFUSALS: ReadonlySet<number> = new Set([10052, 10069, 10065, 10055, 10061, 10074]);

/** Options of {@link ensureStream}. */
export interface ReconcileOptions {
  /** Where the lines of what changed (info) and of harmless differences kept (warn) go. */
  log?: Logger;
}

/**
 * Creates the stream when missing, else brings it to the wanted settings.
 * @throws ConfigurationError when it differs in what JetStream cannot change, or the
 *   server refuses a change; the message says what to do.
 */
export async function ensureStream(jsm: JetStreamManager, wanted: WantedStream, options: ReconcileOptions = {}): Promise<StreamInfo> {
  await createStream(jsm, wanted);
  return reconcileStream(jsm, wanted, options);
}

/**
 * Creates the stream unless it exists. Safe when several processors start at once.
 */
export async function createStream(jsm: JetStreamManager, wanted: WantedStream): Promise<void> {
  await withMetaRetry(wanted.label, async () => {
    if (await lookUp(jsm, wanted.name)) return;
    try {
      await wanted.create();
    } catch (err) {
      // Another processor created it between our look and our add.
      if (!isAlreadyInUse(err)) throw err;
    }
  });
}

/**
 * Updates the settings in which the stream differs from the wanted ones, all in one
 * update, and only when one does.
 * @throws ConfigurationError as {@link ensureStream} does.
 */
export async function reconcileStream(jsm: JetStreamManager, wanted: WantedStream, options: ReconcileOptions = {}): Promise<StreamInfo> {
  const { log } = options;
  return withMetaRetry(wanted.label, async () => {
    const info = await jsm.streams.info(wanted.name);
    const changes = settingChanges(info.config, wanted);
    const fixed = changes.filter((c) => !c.changeable);
    if (fixed.length > 0) {
      const problem = fixed.map((c) => `${wanted.label} uses ${c.from} ${c.name}; this version needs ${c.to} ${c.name}`).join('; ');
      if (!wanted.disposable || fixed.some((c) => c.setting !== 'storage')) {
        throw new ConfigurationError(`${problem}, which JetStream cannot change in place: ${recreate(wanted)}`);
      }
      log?.warn({ stream: wanted.name }, `${problem}, which JetStream cannot change in place; ${wanted.disposable}, so it works as it is (delete it while no processor runs to have it created anew)`);
    }
    const update = changes.filter((c) => c.changeable);
    if (update.length === 0) return info;
    let updated: StreamInfo;
    try {
      updated = await jsm.streams.update(wanted.name, patch(wanted.settings, update));
    } catch (err) {
      if (!(err instanceof JetStreamApiError && REFUSALS.has(err.code))) throw err;
      throw refused(wanted, update, `nats-server refused it: ${errorMessage(err)}`);
    }
    const kept = settingChanges(updated.config, wanted).filter((c) => update.some((u) => u.setting === c.setting));
    // A server that does not know a setting ignores it.
    if (kept.length > 0) throw refused(wanted, kept, 'nats-server kept them as they were (a server older than this version needs ignores settings it does not know)');
    log?.info({ stream: wanted.name, changes: update.map((c) => `${c.name} ${c.from} → ${c.to}`) }, `Updated ${wanted.label}: ${describeChanges(update)}`);
    return updated;
  });
}

/** The update that brings the changed settings to their wanted values. */
function patch(settings: StreamSettings, changes: readonly SettingChange[]): Partial<StreamUpdateConfig> {
  // The retention policy is not among what the client's types let an update change, though
  // the server changes it between limits and interest.
  return Object.fromEntries(changes.map((c) => [c.setting, settings[c.setting]])) as Partial<StreamUpdateConfig>;
}

/** Changes the server would not make. */
function refused(wanted: WantedStream, changes: readonly SettingChange[], why: string): ConfigurationError {
  return new ConfigurationError(
    `could not update ${wanted.label} (${describeChanges(changes)}): ${why}; change it by hand (nats stream edit ${wanted.name}) or ${recreate(wanted)}`,
  );
}

/** What to do about a stream that cannot be brought to this version's settings. */
function recreate(wanted: WantedStream): string {
  return `back up or drain what it holds, delete it (nats stream rm ${wanted.name}) and start a processor again, which creates it anew`;
}

function settingName(setting: keyof StreamSettings, wanted: WantedStream): string {
  if (setting === 'num_replicas') return 'replicas';
  if (setting === 'max_msgs_per_subject' && wanted.name.startsWith('KV_')) return 'history';
  return setting;
}

async function lookUp(jsm: JetStreamManager, name: string): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(name);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** 10059 stream not found, 10014 consumer not found. */
export function isNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === 10059 || err.code === 10014);
}

/**
 * A message delete found no message at that sequence: 10043 sequence not found, or 10057
 * (a delete that failed) saying so, as a replicated stream answers.
 */
export function isMessageGone(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === 10043 || (err.code === 10057 && /no message found/i.test(err.message)));
}

/** 10058 stream name in use, 10148 consumer already exists, 10013 consumer name in use. */
export function isAlreadyInUse(err: unknown): boolean {
  return err instanceof JetStreamApiError && [10058, 10148, 10013].includes(err.code);
}
