/**
 * Journals on the JOURNAL stream: invocation `id` appends to `journal.<id>`, one message
 * per entry, each publish fenced on the subject's last sequence. An append costs one
 * replicated write whatever the journal's length.
 */
import { randomBytes } from 'node:crypto';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { DeliverPolicy, type JetStreamClient, type JetStreamManager, type MsgRequest } from '@nats-io/jetstream';
import { JournalEntrySchema, type JournalEntry } from '../gen/durable/durable_pb.js';
import type { EngineNames } from '../config.js';
import { DecodeError, FencedError, JournalEntryTooLargeError, TimeoutError } from '../errors.js';
import { withInline, type JournalLog, type JournalStore, type OpenJournalOptions } from '../engine/stores.js';
import { DEFAULT_RETRY_DEADLINE_MS, withRetry, WRITE_RETRY_DEADLINE_MS, writeOnce, type RetryOptions } from './retry.js';
import { isWrongLastSequence } from './state-store.js';

/** Step number and type of a claim mark: written when a run takes an invocation over, never returned as an entry. */
const CLAIM_STEP = -1;
const CLAIM_TYPE = '$claim';
/** Claims tried before giving up on a journal that keeps moving. */
const CLAIM_TRIES = 3;

/** How long reading one journal may stall before the read is tried again, ms. */
const READ_STALL_MS = 3_000;
const READ_TRIES = 5;
/** Room left in a message for the headers of a fenced append (the expected sequence). */
const HEADER_ROOM = 128;

/** Options of {@link NatsJournalStore}. */
export interface NatsJournalStoreOptions {
  /**
   * The largest message the server takes (`nc.info.max_payload`): an entry that would not
   * fit fails with a {@link JournalEntryTooLargeError} before it is published.
   * @default no limit known: the publish itself fails
   */
  maxPayload?: () => number | undefined;
}

/** A JournalStore on a JetStream stream. */
export class NatsJournalStore implements JournalStore {
  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly names: EngineNames,
    private readonly options: NatsJournalStoreOptions = {},
  ) {}

  /** Bytes one entry may take at most, or undefined when the server's limit is not known. */
  get maxEntryBytes(): number | undefined {
    const maxPayload = this.options.maxPayload?.();
    return maxPayload === undefined ? undefined : maxPayload - HEADER_ROOM;
  }

  location(invocationId: string): { stream: string; subject: string } {
    return { stream: this.names.journalStream, subject: `${this.names.journalSubject}.${invocationId}` };
  }

  async open(invocationId: string, options: OpenJournalOptions = {}): Promise<JournalLog> {
    const { subject } = this.location(invocationId);
    let { entries, lastSeq } = options.known
      ? { entries: [...options.known.entries], lastSeq: options.known.lastSequence }
      : options.fresh
        ? { entries: [], lastSeq: 0 }
        : await this.#read(invocationId, WRITE_RETRY_DEADLINE_MS);
    let expected = lastSeq;
    if (options.claim !== undefined) {
      // Unique to this claim: an append that got no answer is known stored by its bytes, and a
      // claim by another run of the same processor must not pass for ours.
      const request = new TextEncoder().encode(`${options.claim}/${randomBytes(8).toString('hex')}`);
      const mark = toBinary(JournalEntrySchema, create(JournalEntrySchema, { stepNumber: CLAIM_STEP, stepType: CLAIM_TYPE, request }));
      // The caller owns the invocation's state already; a stalled run may still get one
      // append in before the mark. Read again and mark after it: from then on it is refused.
      // The mark is an append as any other: it rides out an election of the stream's leader.
      for (let tries = 1; ; tries++) {
        try {
          expected = await this.#appendAfter(invocationId, mark, expected);
          break;
        } catch (err) {
          if (!(err instanceof FencedError)) throw err;
          if (tries >= CLAIM_TRIES) throw new FencedError(`journal of ${invocationId} kept being appended to while it was being claimed`, { cause: err });
          ({ entries, lastSeq: expected } = await this.#read(invocationId, WRITE_RETRY_DEADLINE_MS));
        }
      }
    }
    const limit = (): number | undefined => this.maxEntryBytes;
    let unstreamed = options.known?.unstreamed ?? 0;
    if (options.inline && !options.known) ({ entries, unstreamed } = withInline(options.inline, entries));
    return {
      entries,
      unstreamed,
      get lastSequence() {
        return expected;
      },
      get maxEntryBytes() {
        return limit();
      },
      append: async (entry: JournalEntry) => {
        const bytes = toBinary(JournalEntrySchema, entry);
        const max = limit();
        if (max !== undefined && bytes.length > max) {
          // The client would refuse it before sending; every retry would too.
          throw new JournalEntryTooLargeError({ invocationId, step: entry.stepNumber, stepType: entry.stepType, size: bytes.length, limit: max });
        }
        expected = await this.#appendAfter(invocationId, bytes, expected);
      },
    };
  }

  /**
   * Appends an entry fenced on the journal's last sequence being `after`, riding out a
   * leader election: a try that got no answer may have been stored, so a later try refused
   * for the sequence looks at the entry after `after`, and if it is this one, it was.
   * @returns the entry's stream sequence.
   * @throws FencedError when another processor appended after `after`.
   */
  async #appendAfter(invocationId: string, bytes: Uint8Array, after: number): Promise<number> {
    const { stream, subject } = this.location(invocationId);
    try {
      return await writeOnce(
        `append to the journal of ${invocationId}`,
        bytes,
        async () => (await this.js.publish(subject, bytes, { expect: { lastSubjectSequence: after } })).seq,
        isWrongLastSequence,
        async () => (await this.jsm.streams.getMessage(stream, { next_by_subj: subject, seq: after + 1 } as unknown as MsgRequest)) ?? undefined,
      );
    } catch (err) {
      if (isWrongLastSequence(err)) throw new FencedError(`journal of ${invocationId} was appended to by another processor`, { cause: err });
      throw err;
    }
  }

  /** Every entry of a journal, and the stream sequence of the last one (0 when empty); retried through an election as client calls are. */
  read(invocationId: string, retry: RetryOptions = {}): Promise<{ entries: JournalEntry[]; lastSeq: number }> {
    return this.#read(invocationId, retry.deadlineMs ?? DEFAULT_RETRY_DEADLINE_MS);
  }

  /** {@link read}, riding out an election of the stream's leader for up to `deadlineMs`. */
  #read(invocationId: string, deadlineMs: number): Promise<{ entries: JournalEntry[]; lastSeq: number }> {
    return withRetry(`read the journal of ${invocationId}`, () => this.#readOnce(invocationId), { deadlineMs });
  }

  async #readOnce(invocationId: string): Promise<{ entries: JournalEntry[]; lastSeq: number }> {
    const { stream, subject } = this.location(invocationId);
    // From the stream's leader: a replica behind it could hide the last entries, and the run
    // would replay a short journal, then fail its first append.
    const last = await this.jsm.streams.getMessage(stream, { last_by_subj: subject });
    if (!last) return { entries: [], lastSeq: 0 };
    for (let tries = 1; ; tries++) {
      try {
        return { entries: await this.readUpTo(subject, last.seq), lastSeq: last.seq };
      } catch (err) {
        // An ordered consumer now and then lands on a server that does not answer yet.
        if (tries >= READ_TRIES) throw err;
      }
    }
  }

  /**
   * Calls `onEntry` with every entry of a journal after stream sequence `afterSeq`, those
   * there now and those appended later, until `signal` aborts.
   */
  async follow(invocationId: string, afterSeq: number, onEntry: (entry: JournalEntry, seq: number) => void, signal: AbortSignal): Promise<void> {
    const { stream, subject } = this.location(invocationId);
    const consumer = await this.js.consumers.get(stream, {
      filter_subjects: [subject],
      ...(afterSeq > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: afterSeq + 1 } : {}),
    });
    const messages = await consumer.consume();
    const stop = (): void => void messages.stop();
    signal.addEventListener('abort', stop, { once: true });
    try {
      if (signal.aborted) return;
      for await (const m of messages) {
        const entry = fromBinary(JournalEntrySchema, m.data);
        if (entry.stepNumber !== CLAIM_STEP) onEntry(entry, m.seq);
      }
    } finally {
      signal.removeEventListener('abort', stop);
      messages.stop();
      await consumer.delete().catch(() => undefined);
    }
  }

  async readUpTo(subject: string, lastSeq: number): Promise<JournalEntry[]> {
    const consumer = await this.js.consumers.get(this.names.journalStream, { filter_subjects: [subject] });
    const entries: JournalEntry[] = [];
    let reached = false;
    const messages = await consumer.consume({ max_messages: 1_000, expires: READ_STALL_MS });
    const stall = setTimeout(() => messages.stop(new TimeoutError(`reading ${subject} stalled`)), READ_STALL_MS * 2);
    try {
      for await (const m of messages) {
        try {
          const entry = fromBinary(JournalEntrySchema, m.data);
          if (entry.stepNumber !== CLAIM_STEP) entries.push(entry);
        } catch (err) {
          throw new DecodeError(`journal entry ${m.seq} of ${subject} is not a durable.JournalEntry`, { cause: err });
        }
        stall.refresh();
        if (m.seq >= lastSeq) {
          reached = true;
          break;
        }
      }
    } finally {
      clearTimeout(stall);
      messages.stop();
      await consumer.delete().catch(() => undefined);
    }
    if (!reached) throw new TimeoutError(`reading ${subject} ended before sequence ${lastSeq}`);
    return entries;
  }
}
