/**
 * Retention on JetStream. An invocation that left no record but its state and index entry
 * (nothing journaled outside its state: one step or none, no sleep, awakeable, child, parent
 * or key queue) has both written with a per-message TTL of its retention, and the server
 * removes them then. For any other, when it ends, a purge command is scheduled for it as a
 * scheduled message (`timers.<id>.purge`, see `timers.ts`): the server itself queues it on
 * `commands.<partition key>` once the retention has passed, so no processor sweeps, polls
 * or remembers anything, and the purge is routed, ordered and owned like any command of
 * its invocation. The purge removes each record with a filtered stream purge, which leaves
 * no delete marker behind: the subjects and bytes are gone, not tombstoned.
 */
import { create } from '@bufbuild/protobuf';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { BatchWindow } from '../batch-window.js';
import type { EngineNames } from '../config.js';
import { CommandKind, CommandSchema, type ExecutionState, type JournalEntry } from '../gen/durable/durable_pb.js';
import { keyedStateKey } from '../engine/keyed-state.js';
import { holdsWholeJournal, withInline, type RetentionStore, type WakeTarget } from '../engine/stores.js';
import { dropIndexEntries, type ExecutionIndex } from './execution-index.js';
import type { NatsJournalStore } from './journal-store.js';
import { scheduleCommand } from './timers.js';

/** The name of the purge among an invocation's timers. */
const PURGE_TIMER = 'purge';
/** Step types of the entries that made an awakeable: `AWAKEABLE:<awakeable id>`. */
const AWAKEABLE_STEP = 'AWAKEABLE:';

/**
 * Purges scheduled within this long of each other are published together, so that the
 * stream takes them in one replicated, synced write rather than one each, ms. The commands
 * that end their invocations are acknowledged after it (see `ExecutionOutcome`).
 */
const SCHEDULE_BATCH_MS = 50;

/** A RetentionStore on the engine's streams and buckets. */
export class NatsRetention implements RetentionStore {
  /**
   * With the index its processor writes: the setup allows per-message TTLs on the state
   * bucket and the index stream, so a state and its entry written to expire go by themselves.
   */
  readonly expiresStates: boolean;
  /** The window the purges scheduled now are published at the end of. */
  readonly #batch = new BatchWindow(SCHEDULE_BATCH_MS);

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly names: EngineNames,
    private readonly journals: NatsJournalStore,
    private readonly index?: ExecutionIndex,
  ) {
    this.expiresStates = index !== undefined;
  }

  async schedulePurge(target: WakeTarget, dueAtMs: number, retentionMs: number): Promise<void> {
    const command = create(CommandSchema, {
      invocationId: target.invocationId,
      handler: target.handler,
      partitionKey: target.partitionKey,
      kind: CommandKind.PURGE,
      retentionMs: BigInt(retentionMs),
      submittedAtMs: BigInt(Date.now()),
    });
    await this.#batch.end();
    await scheduleCommand(this.js, this.names, { command, dueAtMs, timer: PURGE_TIMER });
  }

  async purge(state: ExecutionState): Promise<void> {
    const id = state.invocationId;
    const { names } = this;
    // The awakeables it made are named in its journal, which goes next.
    const entries = holdsWholeJournal(state) ? state.journal : withInline(state.journal, (await this.journals.read(id)).entries).entries;
    for (const awakeable of awakeablesOf(entries)) await this.#purgeKey(names.awakeablesBucket, awakeable);
    await this.jsm.streams.purge(names.journalStream, { filter: `${names.journalSubject}.${id}` });
    await this.jsm.streams.purge(names.commandsStream, { filter: `${names.timersSubject}.${id}.>` });
    // Its place in its key's queue, left behind only by a crash (an ended invocation leaves it).
    await this.jsm.streams.purge(names.keyedQueueStream, { filter: `${names.keyedQueueSubject}.${keyedStateKey(state.partitionKey)}.${id}` });
    if (this.index) await this.index.drop(id);
    else await dropIndexEntries(this.jsm, names, id);
    // Last: until the state goes, a purge cut short is found again and finished.
    await this.#purgeKey(names.stateBucket, id);
  }

  /** Removes a key of a bucket with its history, leaving no delete marker. */
  async #purgeKey(bucket: string, key: string): Promise<void> {
    await this.jsm.streams.purge(`KV_${bucket}`, { filter: `$KV.${bucket}.${key}` });
  }
}

/** The IDs of the awakeables a journal made. */
function awakeablesOf(entries: readonly JournalEntry[]): Set<string> {
  const ids = new Set<string>();
  for (const entry of entries) if (entry.stepType.startsWith(AWAKEABLE_STEP)) ids.add(entry.stepType.slice(AWAKEABLE_STEP.length));
  return ids;
}
