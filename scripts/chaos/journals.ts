/**
 * Reads every journal entry a chaos run wrote, straight from the JOURNAL stream (not from
 * the final states, which could hide a second copy of a step): one ordered consumer over
 * `journal.chaos-<run>...`, read to the stream's last sequence.
 */
import { fromBinary } from '@bufbuild/protobuf';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { type JournalEntry, JournalEntrySchema, engineNames } from '../../packages/core/src/index.js';

/** How long the read may stall before it starts over, ms. */
const STALL_MS = 10_000;
const TRIES = 5;

/** The entries of every journal whose invocation ID starts with `idPrefix`, by invocation ID, in stream order. */
export async function readJournals(nc: NatsConnection, idPrefix: string): Promise<Map<string, JournalEntry[]>> {
  for (let tries = 1; ; tries++) {
    try {
      return await readOnce(nc, idPrefix);
    } catch (err) {
      if (tries >= TRIES) throw err;
    }
  }
}

async function readOnce(nc: NatsConnection, idPrefix: string): Promise<Map<string, JournalEntry[]>> {
  const names = engineNames();
  const prefix = `${names.journalSubject}.`;
  const info = await (await jetstreamManager(nc)).streams.info(names.journalStream);
  const journals = new Map<string, JournalEntry[]>();
  if (info.state.messages === 0) return journals;
  const consumer = await jetstream(nc).consumers.get(names.journalStream, { filter_subjects: [`${prefix}>`] });
  const messages = await consumer.consume({ max_messages: 1_000 });
  const stall = setTimeout(() => messages.stop(new Error(`reading ${names.journalStream} stalled`)), STALL_MS);
  try {
    for await (const m of messages) {
      stall.refresh();
      const id = m.subject.slice(prefix.length);
      if (id.startsWith(idPrefix)) {
        const entries = journals.get(id) ?? [];
        entries.push(fromBinary(JournalEntrySchema, m.data));
        journals.set(id, entries);
      }
      if (m.seq >= info.state.last_seq) break;
    }
  } finally {
    clearTimeout(stall);
    messages.stop();
    await consumer.delete().catch(() => undefined);
  }
  return journals;
}
