/**
 * Consumers kept on their stream's leader. A follower applies each acknowledged write a
 * moment after the leader does, so a consumer there may not yet count or deliver an entry
 * written just before: whoever must see what was just written reads through a consumer on
 * the leader. The server places a one-replica consumer on any of the stream's servers, so
 * one placed elsewhere is made again (each lands on the leader about one time in three).
 */
import type { ConsumerConfig, ConsumerInfo, JetStreamManager } from '@nats-io/jetstream';
import { withRetry } from './retry.js';

/** Consumers made at most to get one on the leader. */
const PLACEMENT_ATTEMPTS = 12;

/** The server leading a stream now; undefined on a single server (no cluster). */
export async function streamLeader(jsm: JetStreamManager, stream: string): Promise<string | undefined> {
  return (await withRetry(`read stream ${stream}`, () => jsm.streams.info(stream))).cluster?.leader;
}

/** The server a consumer runs on (its leader; a one-replica consumer has no other). */
export function consumerServer(info: ConsumerInfo): string | undefined {
  return info.cluster?.leader;
}

/**
 * Makes a one-replica consumer on `leader` (the stream's leader, see {@link streamLeader}):
 * makes it again until it lands there, and deletes the ones that did not. A durable
 * consumer (`durable_name` set) that already exists elsewhere is deleted and made again.
 * After {@link PLACEMENT_ATTEMPTS} the last one made is kept wherever it is.
 */
export async function addOnLeader(jsm: JetStreamManager, stream: string, config: Partial<ConsumerConfig>, leader: string | undefined): Promise<ConsumerInfo> {
  const what = `make a consumer on ${stream}`;
  for (let attempt = 1; ; attempt++) {
    const info = await withRetry(what, () => jsm.consumers.add(stream, { ...config, num_replicas: 1 }));
    if (leader === undefined || consumerServer(info) === leader || attempt >= PLACEMENT_ATTEMPTS) return info;
    // A durable one must be gone before its name is made again; an ephemeral one may go later.
    const deleted = withRetry(what, () => jsm.consumers.delete(stream, info.name)).catch(() => false);
    if (config.durable_name !== undefined) await deleted;
  }
}
