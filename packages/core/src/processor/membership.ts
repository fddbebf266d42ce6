/**
 * Who is alive, and which partitions each processor should own. Every processor writes a
 * heartbeat record to the `PROCESSORS` bucket every {@link HEARTBEAT_MS} and watches the
 * others'; a record not renewed for {@link EXPIRY_MS} is a processor gone. Each partition
 * is shared out by rendezvous hashing with a cap: every live processor ranks the
 * partitions, each partition goes to the processor ranking highest for it that has not
 * yet its even share, so the shares differ by one at most, a join or a leave moves a share
 * of the partitions (more than the fewest possible, never all), and every processor
 * computes the same assignment without talking to the others.
 *
 * A record found when a processor starts, or appearing later, is pinged first: a processor
 * killed a moment ago leaves a fresh record behind, and its partitions are taken at once
 * rather than when the record expires.
 *
 * The assignment only says who should pull a partition; who may run its commands is the
 * server's call (one pinned client per partition consumer), so two processors that briefly
 * disagree never both receive the partition's commands.
 */
import { createHash } from 'node:crypto';
import { setTimeout as wait } from 'node:timers/promises';
import type { KV, KvWatchEntry } from '@nats-io/kv';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../logger.js';
import { errorMessage } from '../errors.js';

/** How often a processor renews its record, ms. */
export const HEARTBEAT_MS = 1_000;
/** A record not renewed for this long is a processor gone, ms. */
export const EXPIRY_MS = 4_000;
/** How long a processor whose record appears has to answer a ping before it is taken for dead, ms. */
const PING_TIMEOUT_MS = 1_000;

/** What a processor says of itself in its record. */
interface MemberRecord {
  workflows: string[];
}

/** A processor's view of the live processors. */
export class Membership {
  readonly #kv: KV;
  readonly #nc: NatsConnection;
  readonly #pings: string;
  readonly #self: string;
  readonly #record: Uint8Array;
  readonly #logger: Logger;
  /** Live processors: when their record was last seen renewed (this process's clock). */
  readonly #seen = new Map<string, { at: number; workflows: string[] }>();
  readonly #listeners = new Set<() => void>();
  #heartbeat: NodeJS.Timeout | undefined;
  #watch: { stop(): void } | undefined;
  #answering: Subscription | undefined;
  #lastMembers = '';
  #lastRenew = performance.now();
  /** Pings not answered yet. */
  readonly #pinging = new Set<Promise<void>>();
  /** Processors found dead (by expiry or an unanswered ping) so far. */
  deaths = 0;

  private constructor(nc: NatsConnection, kv: KV, pings: string, self: string, workflows: string[], logger: Logger) {
    this.#nc = nc;
    this.#pings = pings;
    this.#kv = kv;
    this.#self = self;
    this.#logger = logger;
    this.#record = new TextEncoder().encode(JSON.stringify({ workflows } satisfies MemberRecord));
  }

  /**
   * Writes this processor's record and follows everyone's; answers pings on
   * `<pings>.<self>`.
   */
  static async join(options: { nc: NatsConnection; kv: KV; pings: string; self: string; workflows: string[]; logger: Logger }): Promise<Membership> {
    const { nc, kv, pings, self, workflows, logger } = options;
    const membership = new Membership(nc, kv, pings, self, workflows, logger);
    membership.#answering = nc.subscribe(pingSubject(pings, self), {
      callback: (_err, msg) => {
        msg.respond();
      },
    });
    try {
      await kv.put(self, membership.#record);
    } catch (err) {
      membership.#answering.unsubscribe();
      throw err;
    }
    membership.#seen.set(self, { at: performance.now(), workflows });
    const watch = await kv.watch();
    membership.#watch = watch;
    let caughtUp: () => void = () => undefined;
    const initial = new Promise<void>((resolve) => (caughtUp = resolve));
    void (async () => {
      for await (const entry of watch) {
        // Records left by processors that died long ago are not taken for live ones.
        if (entry.operation !== 'PUT' || Date.now() - entry.created.getTime() < EXPIRY_MS) membership.#observe(entry);
        if (entry.delta === 0) caughtUp();
      }
    })().catch(() => undefined);
    // The others' records first, so the first assignment is not "everything is mine", and
    // their answers, so that it leaves out a processor killed a moment ago.
    await Promise.race([initial, wait(2_000)]);
    await Promise.all(membership.#pinging);
    membership.#heartbeat = setInterval(() => membership.#renew(), HEARTBEAT_MS);
    return membership;
  }

  /** Called whenever the set of live processors may have changed. */
  onChange(listener: () => void): void {
    this.#listeners.add(listener);
  }

  /** Live processors, this one included, sorted. */
  members(): string[] {
    const now = performance.now();
    for (const [id, seen] of this.#seen) {
      if (id !== this.#self && now - seen.at > EXPIRY_MS) {
        this.#seen.delete(id);
        this.deaths++;
      }
    }
    return [...this.#seen.keys()].sort();
  }

  /** True when some live processor (this one included) runs the workflow. */
  someoneRuns(workflow: string): boolean {
    this.members();
    for (const seen of this.#seen.values()) if (seen.workflows.includes(workflow)) return true;
    return false;
  }

  /** The partitions (of `count`) this processor should own now. */
  assigned(count: number): Set<number> {
    const mine = new Set<number>();
    for (const [partition, member] of assignment(this.members(), count)) if (member === this.#self) mine.add(partition);
    return mine;
  }

  /** Removes this processor's record, so the others take its partitions at once. */
  async leave(): Promise<void> {
    clearInterval(this.#heartbeat);
    this.#watch?.stop();
    this.#answering?.unsubscribe();
    await this.#kv.delete(this.#self).catch(() => undefined);
  }

  #renew(): void {
    // This process itself was stalled (SIGSTOP, a long pause): the others' records are
    // waiting unread, not expired. Give them a fresh chance rather than declare everyone dead.
    const now = performance.now();
    if (now - this.#lastRenew > EXPIRY_MS) for (const seen of this.#seen.values()) seen.at = now;
    this.#lastRenew = now;
    this.#kv.put(this.#self, this.#record).catch((err: unknown) => {
      this.#logger.debug({ err }, `Could not renew processor record: ${errorMessage(err)}`);
    });
    // Expiries are noticed on the clock, not by a message.
    this.#changed();
  }

  #observe(entry: KvWatchEntry): void {
    if (entry.operation !== 'PUT') {
      if (entry.key !== this.#self) this.#seen.delete(entry.key);
    } else {
      let workflows: string[] = [];
      try {
        workflows = (JSON.parse(entry.string()) as MemberRecord).workflows ?? [];
      } catch {
        // A record this version cannot read still counts as a live processor.
      }
      const known = this.#seen.has(entry.key);
      this.#seen.set(entry.key, { at: performance.now(), workflows });
      if (!known && entry.key !== this.#self) this.#ping(entry.key);
    }
    this.#changed();
  }

  /** Takes a processor that does not answer for dead at once. */
  #ping(id: string): void {
    const asked = performance.now();
    const ping = this.#nc.request(pingSubject(this.#pings, id), undefined, { timeout: PING_TIMEOUT_MS }).then(
      () => undefined,
      () => this.#unanswered(id, asked),
    );
    this.#pinging.add(ping);
    void ping.finally(() => this.#pinging.delete(ping));
  }

  #unanswered(id: string, asked: number): void {
    // Renewed since it was asked (a slow answer, not a dead processor): keep it.
    const seen = this.#seen.get(id);
    if (!seen || seen.at > asked) return;
    this.#seen.delete(id);
    this.deaths++;
    this.#logger.info({ processor: id }, `Processor ${id} does not answer; taking its partitions`);
    this.#changed();
  }

  #changed(): void {
    const members = this.members().join(',');
    if (members === this.#lastMembers) return;
    this.#lastMembers = members;
    for (const listener of this.#listeners) listener();
  }
}

/** Where a processor answers pings: its ID as one subject token. */
function pingSubject(prefix: string, id: string): string {
  return `${prefix}.${id.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

/**
 * Which member owns each of `count` partitions: rendezvous hashing with a cap. Every
 * (partition, member) pair gets a score, a hash of both; going down the pairs from the
 * highest score, a partition not yet given goes to the member if it is under its share.
 * The shares are even: each member takes `floor(count / members)` partitions, and the first
 * `count % members` to fill up take one more. Plain rendezvous hashing (each partition to
 * its top-ranked member) moves as little, but on 16 partitions it gave four processors 9,
 * 4, 2 and 1 of them, and four processors on 4 partitions each get one only about one time
 * in ten (4! / 4^4). The result does not depend on the members' order.
 */
export function assignment(members: readonly string[], count: number): Map<number, string> {
  const owners = new Map<number, string>();
  if (members.length === 0) return owners;
  const unique = new Set(members);
  const pairs: { partition: number; member: string; score: string }[] = [];
  for (const member of unique) {
    for (let partition = 0; partition < count; partition++) pairs.push({ partition, member, score: score(member, partition) });
  }
  pairs.sort((a, b) => (a.score < b.score ? 1 : a.score > b.score ? -1 : a.member < b.member ? -1 : 1));
  const share = Math.floor(count / unique.size);
  let larger = count % unique.size;
  const taken = new Map<string, number>();
  for (const { partition, member } of pairs) {
    if (owners.has(partition)) continue;
    const has = taken.get(member) ?? 0;
    if (has > share || (has === share && larger === 0)) continue;
    if (has === share) larger--;
    owners.set(partition, member);
    taken.set(member, has + 1);
  }
  return owners;
}

function score(member: string, partition: number): string {
  return createHash('sha1').update(`${member}/${partition}`).digest('hex');
}
