/**
 * Consumers kept on their stream's leader. A follower applies each acknowledged write a
 * moment after the leader does, so a consumer there may not yet count or deliver an entry
 * written just before: whoever must see what was just written reads through a consumer on
 * the leader. The server places a one-replica consumer on any of the stream's servers, so
 * one placed elsewhere is made again (each lands on the leader about one time in three).
 *
 * Making a filtered consumer costs the server a count of every message its filter matches
 * (about 0.35 ms per 1,000 on a 2-core machine). So a named consumer is placed with a
 * filter that matches nothing, made again until it is on the leader, and only then given
 * its filter (an update the server allows since 2.10): it counts once, not once per try.
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
 * Makes a one-replica consumer named `config.durable_name` on `leader` (the stream's
 * leader, see {@link streamLeader}), placing it with `placeholder`, a filter of the stream
 * that matches nothing (see the module doc). After {@link PLACEMENT_ATTEMPTS} the last one
 * made is kept wherever it is.
 * @throws JetStreamApiError 10148 (see `isAlreadyInUse`) when a consumer of that name exists.
 */
export async function addOnLeader(
  jsm: JetStreamManager,
  stream: string,
  config: Partial<ConsumerConfig> & { durable_name: string },
  leader: string | undefined,
  placeholder: string,
): Promise<ConsumerInfo> {
  const what = `make consumer ${config.durable_name} on ${stream}`;
  for (let attempt = 1; ; attempt++) {
    // `add` creates, and fails when a consumer of that name exists with another config.
    const placed = await withRetry(what, () => jsm.consumers.add(stream, { ...config, num_replicas: 1, filter_subject: placeholder }));
    if (leader === undefined || consumerServer(placed) === leader || attempt >= PLACEMENT_ATTEMPTS) {
      if (config.filter_subject === undefined) return placed;
      return withRetry(what, () => jsm.consumers.update(stream, config.durable_name, { filter_subject: config.filter_subject }));
    }
    await withRetry(what, () => jsm.consumers.delete(stream, config.durable_name)).catch(() => false);
  }
}

