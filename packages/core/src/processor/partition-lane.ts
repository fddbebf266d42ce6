/**
 * One partition of the command stream, owned by this processor: pulls its consumer as the
 * one pinned client of the owner group, and starts the commands of each partition key one
 * at a time, in stream order, the next only once the one before it has finished its run.
 *
 * Order across owners. When a partition changes hands, commands the previous owner had
 * received and not acknowledged come back only after their ack wait (or at once, if it
 * handed them back), later than newer commands of the same keys. So a new owner starts a
 * command only once it knows no older command of its key is outstanding elsewhere: until
 * the partition is *settled* (every command stored before this owner's first delivery is
 * held here or gone, see {@link PartitionLane.#settle}) each start first asks the stream
 * leader for the oldest stored command of its key. Once settled, nothing older than what
 * this owner holds can exist, and starts cost no read.
 *
 * Finished commands. A command is finished once acknowledged: at or below its consumer's
 * ack floor, or gone from the stream. A stream of limits retention keeps acknowledged
 * commands until removed, so the owner removes those at or below the floor (one filtered
 * purge of the partition's subjects) about once a second while it acknowledges commands,
 * and once when its session begins; the order checks above look only above the floor. A
 * command acknowledged above the floor (one before it still runs) looks unfinished to
 * anyone but the lane that acknowledged it, and would hold its key up after a change of
 * owner: the lane deletes each such command that is still there 2 s after its
 * acknowledgement, and all of them when it stops.
 */
import type { Consumer, ConsumerInfo, ConsumerMessages, JetStreamManager, JsMsg, MsgRequest, NextMsgRequest } from '@nats-io/jetstream';
import { setMaxListeners } from 'node:events';
import { setTimeout as wait } from 'node:timers/promises';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { isMessageGone } from '../nats/reconcile.js';
import { OWNER_GROUP } from '../nats/setup.js';

/** What became of a command the lane started. */
export type Disposition =
  /** Finished: acknowledged, the key goes on. */
  | 'ack'
  /** Not now (an infrastructure error, or its invocation is busy): kept first in its key's line and tried again. */
  | 'retry'
  /** Another processor has it: forgotten here, neither acknowledged nor handed back. */
  | 'abandon'
  /** The processor is stopping: handed back for immediate redelivery. */
  | 'handback'
  /**
   * Finished, the key goes on; acknowledged once `ackAfter` resolves (what must be written
   * before, still under way). Not acknowledged if it rejects: the command comes back.
   */
  | { ackAfter: Promise<void> };

/** How a lane runs what it starts. */
export interface LaneHandler {
  /**
   * Decodes a message; undefined when it is not a command (the handler dealt with it).
   * `dueAtMs`: when the command may start, unix ms (a wake-up fired early); 0 for at once.
   */
  decode(msg: JsMsg): { key: string; dueAtMs?: number } | undefined;
  /**
   * Runs one command, its key's previous one finished; `signal` aborts when the lane is
   * given up. `storedSince`: the command was stored after this owner's session began and
   * after the consumer last counted its deliveries from the start, so no delivery of it
   * can have come before this one (see {@link PartitionLane.#storedSince}).
   */
  run(msg: JsMsg, signal: AbortSignal, storedSince: boolean): Promise<Disposition>;
  /** Waits for a free run slot; resolves false when the processor stops. */
  slot(): Promise<boolean>;
  /** Gives a run slot back. */
  release(): void;
}

/** Options of a {@link PartitionLane}. */
export interface LaneOptions {
  partition: number;
  stream: string;
  consumer: Consumer;
  consumerName: string;
  /** Stored subjects of the partition are `<subjectPrefix>.<key>`. */
  subjectPrefix: string;
  jsm: JetStreamManager;
  handler: LaneHandler;
  logger: Logger;
  /** Most commands pulled and not yet acknowledged. */
  maxMessages: number;
  /** How long a command waits before it is tried again after a `retry`, ms. */
  retryDelayMs: (msg: JsMsg) => number;
  /** The stream keeps acknowledged commands (limits retention): the owner removes them (see above). */
  trim: boolean;
}

/**
 * How long one pull request stays open at the server, ms. A stopped lane's last request
 * stays there this long; unpinning before it expires could pin the partition to it again.
 */
const PULL_EXPIRES_MS = 1_000;

/** Delay before an unsettled partition's blocked keys are looked at again, ms. */
const RECHECK_MS = 500;

/** How often an owner that acknowledges commands removes them from a stream that keeps them, ms. */
const TRIM_MS = 1_000;

/** How long a command acknowledged here may stay above the ack floor before it is deleted on its own, ms. */
const STRAGGLER_MS = 2_000;

/** Deletions of single commands in flight at once. */
const DELETES_AT_ONCE = 32;

/** Most single commands one trim deletes; the rest wait for the next. */
const DELETES_PER_TRIM = 512;

/** How long a stopping lane spends deleting the commands it acknowledged above the floor, ms. */
const STOP_DELETE_MS = 2_000;

/** One owned partition. */
export class PartitionLane {
  readonly partition: number;
  readonly #o: LaneOptions;
  /** Commands waiting, per key, in stream order. */
  readonly #waiting = new Map<string, JsMsg[]>();
  /** The command running (or being started) per key. */
  readonly #running = new Map<string, JsMsg>();
  readonly #runs = new Set<Promise<unknown>>();
  /** When each held command that may not start at once is due, unix ms. */
  readonly #due = new WeakMap<JsMsg, number>();
  #messages: ConsumerMessages | undefined;
  #stopped = false;
  /** Stream sequences up to this were delivered before this owner's session: possibly elsewhere. */
  #sessionFloor: number | undefined;
  #settled = false;
  #settling = false;
  /** The consumer's sequence of the latest delivery here: it only grows, unless the consumer lost its state. */
  #lastDelivery = 0;
  /** The stream sequence of the latest first delivery here: a consumer delivers commands the first time in stream order. */
  #lastFirst = 0;
  /**
   * The stream's last sequence when this owner's session began, or when the consumer last
   * counted its deliveries from the start (its state lost, see setup): a command stored
   * after it cannot have been delivered before. Undefined until the stream has said.
   */
  #storedAfter: number | undefined;
  /** Counts the questions for {@link #storedAfter}: an answer to an earlier one is dropped. */
  #storedAfterAsked = 0;
  /** Commands of this session finished here whose acks may not have reached the stream yet. */
  readonly #finished = new Set<number>();
  #recheck: NodeJS.Timeout | undefined;
  /** Aborted when the lane is given up: its runs stop at their next step boundary and their commands go back at once. */
  readonly #giveUp = new AbortController();
  /** Whether the server has this lane pinned as the partition's owner. */
  #pinned = false;
  /** Counts sessions: an answer about an earlier session (a settle walk, the floor) is dropped. */
  #session = 0;
  /** The consumer's ack floor (a stream sequence) last read: every command at or below it is finished. */
  #ackFloor = 0;
  /** The stream's commands of this partition at or below this sequence are removed. */
  #trimmedTo = 0;
  /** When the consumer was created (unix ms), as it said: a consumer made anew (its stream too, maybe) has sequences of its own. */
  #consumerCreatedMs: number | undefined;
  /** Counts the consumers seen made anew: a purge's bookkeeping about an earlier one is dropped. */
  #consumerGeneration = 0;
  /** Commands acknowledged here that may be stored above the ack floor: stream sequence → when, unix ms. */
  readonly #ackedAbove = new Map<number, number>();
  #trimTimer: NodeJS.Timeout | undefined;
  #trimming = false;

  constructor(options: LaneOptions) {
    this.partition = options.partition;
    this.#o = options;
    // Each running command of the lane listens to it: many listeners, on purpose.
    setMaxListeners(0, this.#giveUp.signal);
  }

  /** Starts pulling. */
  async start(): Promise<void> {
    const messages = await this.#o.consumer.consume({ group: OWNER_GROUP, max_messages: this.#o.maxMessages, expires: PULL_EXPIRES_MS });
    this.#messages = messages;
    void (async () => {
      for await (const status of messages.status()) {
        if (status.type === 'consumer_pinned') this.#pinned = true;
        if (status.type === 'consumer_unpinned') this.#lostPin();
      }
    })().catch(() => undefined);
    void (async () => {
      for await (const msg of messages) this.#receive(msg);
    })().catch((err: unknown) => {
      if (!this.#stopped) this.#o.logger.error({ err, partition: this.partition }, `Stopped consuming partition ${this.partition}: ${errorMessage(err)}`);
    });
  }

  /** Every command held here, for heartbeats. */
  *held(): Iterable<JsMsg> {
    yield* this.#running.values();
    for (const line of this.#waiting.values()) yield* line;
  }

  /** Commands running now. */
  get running(): number {
    return this.#running.size;
  }

  /**
   * Stops pulling, hands the waiting commands back, lets the running ones finish (up to
   * `graceMs`), then unpins the partition so its next owner is served at once.
   */
  async stop(graceMs: number, onTimeout?: (running: number) => void): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#recheck);
    clearTimeout(this.#trimTimer);
    this.#messages?.stop();
    // Running invocations stop at their next step boundary and their commands go back.
    this.#giveUp.abort();
    for (const line of this.#waiting.values()) for (const msg of line) msg.nak();
    this.#waiting.clear();
    const deadline = Date.now() + graceMs;
    const grace = new AbortController();
    const [done] = await Promise.all([
      (async () => {
        // Runs started while stopping (a start already past its checks) are waited for too.
        while (this.#runs.size > 0 && Date.now() < deadline) {
          await Promise.race([Promise.allSettled([...this.#runs]), wait(deadline - Date.now(), undefined, { signal: grace.signal }).catch(() => undefined)]);
        }
        grace.abort();
        return this.#runs.size === 0;
      })(),
      wait(PULL_EXPIRES_MS + 100),
    ]);
    if (!done) onTimeout?.(this.#running.size);
    // The next owner cannot know which of these were acknowledged: gone, they hold no key up.
    // Bounded: with the cluster out of reach, each request would wait out its own timeout.
    if (this.#o.trim) await Promise.race([this.#trim(0, STOP_DELETE_MS), wait(STOP_DELETE_MS, undefined, { ref: false })]);
    // Only the pinned owner unpins: an unpin takes whoever is pinned, maybe the next owner.
    if (this.#pinned) await this.#o.jsm.consumers.unpin(this.#o.stream, this.#o.consumerName, OWNER_GROUP).catch(() => undefined);
  }

  /** Resolves once the runs in progress have finished. */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.#runs]);
  }

  #receive(msg: JsMsg): void {
    if (this.#stopped) {
      msg.nak();
      return;
    }
    // A consumer that lost its state counts its deliveries from 1 again, and delivers again
    // commands it had delivered (and some it had seen acknowledged, see setup).
    const { deliverySequence, deliveryCount, streamSequence } = msg.info;
    const first = deliveryCount === 1;
    if (deliverySequence <= this.#lastDelivery || (first && streamSequence <= this.#lastFirst)) this.#askStoredAfter();
    // A delivery skipped: the server sent one that never arrived (lost with a connection
    // to a node that died) or went to another client. It comes back only after its ack
    // wait, maybe older than what is held here: as after a change of owner, the partition
    // is settled again before keys go on without asking the stream.
    const skipped = this.#lastDelivery > 0 && deliverySequence > this.#lastDelivery + 1;
    this.#lastDelivery = deliverySequence;
    if (first) this.#lastFirst = streamSequence;
    if (skipped && this.#sessionFloor !== undefined) {
      this.#o.logger.debug({ partition: this.partition, deliverySequence }, `Partition ${this.partition}: a delivery did not arrive; settling again`);
      this.#beginSession();
    }
    const decoded = this.#o.handler.decode(msg);
    if (!decoded) {
      this.#armTrim(); // moved to the dead letters, then acknowledged by the handler
      return;
    }
    if (this.#sessionFloor === undefined) this.#beginSession();
    // Running here already: the copy it runs from is heartbeated and answers.
    if (this.#running.get(decoded.key)?.seq === msg.seq) return;
    if (decoded.dueAtMs) this.#due.set(msg, decoded.dueAtMs);
    this.#line(decoded.key, msg);
    void this.#pump(decoded.key);
  }

  /** This processor is the partition's owner from now on: note what was delivered before. */
  #beginSession(): void {
    const session = ++this.#session;
    this.#pinned = true;
    this.#sessionFloor = Number.MAX_SAFE_INTEGER; // until the consumer says, nothing is settled
    this.#settled = false;
    this.#askStoredAfter();
    void this.#o.jsm.consumers
      .info(this.#o.stream, this.#o.consumerName)
      .then(async (info) => {
        if (session !== this.#session) return;
        this.#sessionFloor = info.delivered.stream_seq;
        // What an earlier owner acknowledged and did not remove goes now.
        await this.#floorRead(info);
        void this.#settle();
      })
      .catch(() => {
        if (session === this.#session) this.#sessionFloor = undefined; // asked again on the next delivery
      });
  }

  /** Asks the stream for its last sequence: see {@link #storedAfter}. Until it answers, no command counts as stored since. */
  #askStoredAfter(): void {
    const asked = ++this.#storedAfterAsked;
    this.#storedAfter = undefined;
    this.#o.jsm.streams.info(this.#o.stream).then(
      (info) => {
        if (asked === this.#storedAfterAsked) this.#storedAfter = info.state.last_seq;
      },
      () => {
        if (asked === this.#storedAfterAsked && !this.#stopped) setTimeout(() => asked === this.#storedAfterAsked && !this.#stopped && this.#askStoredAfter(), RECHECK_MS).unref();
      },
    );
  }

  /** Whether the command was stored after what may have been delivered before this session: see {@link #storedAfter}. */
  #storedSince(msg: JsMsg): boolean {
    return this.#storedAfter !== undefined && msg.seq > this.#storedAfter;
  }

  /** The server gave the partition to another processor: what waits here is theirs now. */
  #lostPin(): void {
    this.#o.logger.info({ partition: this.partition }, `Partition ${this.partition} moved to another processor`);
    this.#session++;
    this.#pinned = false;
    // Handed back at once, so the new owner has them without waiting out their ack wait.
    for (const line of this.#waiting.values()) for (const msg of line) msg.nak();
    this.#waiting.clear();
    this.#sessionFloor = undefined;
    this.#settled = false;
    this.#finished.clear();
  }

  /**
   * Settles the partition: walks the stream's stored commands of this partition up to the
   * session floor; each must be held here or finished here. One that is not (held by the
   * previous owner, or handed back and not yet redelivered) leaves the partition unsettled
   * until it comes back or goes away.
   */
  async #settle(): Promise<void> {
    if (this.#settled || this.#settling || this.#sessionFloor === undefined) return;
    this.#settling = true;
    const session = this.#session;
    try {
      const floor = this.#sessionFloor;
      let from = this.#ackFloor + 1;
      for (;;) {
        const next = await this.#oldest(`${this.#o.subjectPrefix}.>`, from);
        if (next === undefined || next > floor) break;
        if (!this.#holds(next)) {
          this.#scheduleRecheck();
          return;
        }
        from = next + 1;
      }
      // The pin moved while walking: the walk speaks of a session that is over.
      if (session !== this.#session) {
        this.#scheduleRecheck();
        return;
      }
      this.#settled = true;
      this.#finished.clear();
      this.#o.logger.debug({ partition: this.partition, floor }, `Partition ${this.partition} settled`);
      for (const key of this.#waiting.keys()) void this.#pump(key);
    } catch (err) {
      this.#o.logger.debug({ err, partition: this.partition }, `Could not settle partition ${this.partition}: ${errorMessage(err)}`);
      this.#scheduleRecheck();
    } finally {
      this.#settling = false;
    }
  }

  #scheduleRecheck(): void {
    if (this.#stopped || this.#recheck) return;
    this.#recheck = setTimeout(async () => {
      this.#recheck = undefined;
      // Commands acknowledged meanwhile (by the previous owner, or here) no longer hold keys up.
      if (!this.#settled) await this.#readFloor();
      if (!this.#settled) void this.#settle();
      for (const key of this.#waiting.keys()) void this.#pump(key);
    }, RECHECK_MS);
  }

  #holds(seq: number): boolean {
    if (this.#finished.has(seq) || this.#ackedAbove.has(seq)) return true;
    for (const msg of this.held()) if (msg.seq === seq) return true;
    return false;
  }

  /** Starts the next command of a key when it may go. */
  async #pump(key: string): Promise<void> {
    if (this.#stopped || this.#running.has(key)) return;
    const head = this.#waiting.get(key)?.[0];
    if (!head) {
      this.#waiting.delete(key);
      return;
    }
    this.#running.set(key, head); // reserved: a second pump of the key returns above
    this.#waiting.get(key)!.shift();
    if (!(await this.#untilDue(head))) {
      this.#putBack(key, head);
      return;
    }
    let mayStart: boolean;
    try {
      mayStart = this.#settled || (await this.#isOldest(head));
    } catch (err) {
      this.#o.logger.debug({ err, partition: this.partition }, `Could not check the order of ${head.subject}: ${errorMessage(err)}`);
      mayStart = false;
    }
    const slot = mayStart && !this.#stopped && (await this.#o.handler.slot());
    if (slot && this.#stopped) this.#o.handler.release();
    if (!slot || this.#stopped) {
      this.#putBack(key, head);
      if (!this.#stopped) this.#scheduleRecheck();
      return;
    }
    this.#o.logger.trace({ partition: this.partition, seq: head.seq, key, settled: this.#settled, delivery: head.info.deliveryCount }, `Partition ${this.partition}: starting command ${head.seq} of key ${key}`);
    const run = this.#run(key, head);
    this.#runs.add(run);
    void run.finally(() => this.#runs.delete(run));
  }

  async #run(key: string, msg: JsMsg): Promise<void> {
    let disposition: Disposition;
    try {
      disposition = await this.#o.handler.run(msg, this.#giveUp.signal, this.#storedSince(msg));
    } catch {
      disposition = 'retry';
    } finally {
      this.#o.handler.release();
    }
    if (this.#running.get(key) === msg) this.#running.delete(key);
    const { kind, ackAfter } = typeof disposition === 'object' ? { kind: 'ack' as const, ackAfter: disposition.ackAfter } : { kind: disposition, ackAfter: undefined };
    switch (kind) {
      case 'ack':
        await this.#acknowledge(msg, ackAfter);
        break;
      case 'retry':
        this.#putBack(key, msg);
        await wait(this.#o.retryDelayMs(msg));
        break;
      case 'abandon':
        // Another processor runs this invocation: this lane may have lost the partition
        // without hearing of it yet (a stall), so the next commands of its keys start only
        // once the stream shows the ones before them gone, as after a change of owner.
        this.#settled = false;
        this.#scheduleRecheck();
        break;
      case 'handback':
        msg.nak();
        break;
    }
    void this.#pump(key);
  }

  /**
   * Acknowledges a finished command, once `written` resolves when given (not at all if it
   * rejects, or the connection is gone: delivered again, the command finds its invocation
   * ended and writes what is missing). On a settled partition no start looks for finished
   * commands in the stream: the key goes on at once and the ack needs no answer (one lost
   * is such a redelivery); a later one is waited for by `stop`. Otherwise the next command
   * of the key looks for this one in the stream: the ack lands first.
   */
  async #acknowledge(msg: JsMsg, written?: Promise<void>): Promise<void> {
    if (!this.#settled) {
      this.#finished.add(msg.seq);
      if (!written || (await written.then(() => true, () => false))) {
        // Finished, whether or not the answer came: deleting it is as good as its ack.
        await msg.ackAck().catch(() => false);
        this.#acked(msg.seq);
      }
      return;
    }
    if (!written) {
      msg.ack();
      this.#acked(msg.seq);
      return;
    }
    const acked = written.then(
      () => {
        try {
          msg.ack();
          this.#acked(msg.seq);
        } catch {
          // the connection closed meanwhile
        }
      },
      () => undefined,
    );
    this.#runs.add(acked);
    void acked.finally(() => this.#runs.delete(acked));
  }

  /**
   * Waits until a command fired before its time is due, holding its key (and heartbeated
   * as running) but no run slot; false when the lane stops meanwhile.
   */
  async #untilDue(msg: JsMsg): Promise<boolean> {
    const early = (this.#due.get(msg) ?? 0) - Date.now();
    if (early <= 0) return true;
    const due = wait(early, undefined, { signal: this.#giveUp.signal }).then(
      () => !this.#stopped,
      () => false,
    );
    this.#runs.add(due);
    void due.finally(() => this.#runs.delete(due));
    return due;
  }

  #putBack(key: string, msg: JsMsg): void {
    if (this.#running.get(key) === msg) this.#running.delete(key);
    if (this.#stopped) {
      msg.nak();
      return;
    }
    this.#line(key, msg);
  }

  /** Puts a command in its key's line, in stream order; a second copy of one there replaces it (its newest delivery answers). */
  #line(key: string, msg: JsMsg): void {
    const line = this.#waiting.get(key) ?? [];
    const at = line.findIndex((m) => m.seq >= msg.seq);
    if (at >= 0 && line[at]!.seq === msg.seq) line[at] = msg;
    else line.splice(at < 0 ? line.length : at, 0, msg);
    this.#waiting.set(key, line);
  }

  /** True when no command of the message's key older than it is stored and unfinished (other than ones finished here). */
  async #isOldest(msg: JsMsg): Promise<boolean> {
    let from = this.#ackFloor + 1;
    for (;;) {
      const oldest = await this.#oldest(msg.subject, from);
      if (oldest === undefined || oldest >= msg.seq) return true;
      if (!this.#finished.has(oldest) && !this.#ackedAbove.has(oldest)) return false;
      from = oldest + 1;
    }
  }

  /** A command was acknowledged here: removed from a stream that keeps it by a coming trim. */
  #acked(seq: number): void {
    if (!this.#o.trim) return;
    this.#ackedAbove.set(seq, Date.now());
    // A run that outlasted its lane's stop: no trim comes, and the next owner cannot tell it finished.
    if (this.#stopped) void this.#deleteOne(seq);
    else this.#armTrim();
  }

  /** Trims about once a second while commands acknowledged here, or below the floor, are still stored; one trim at a time. */
  #armTrim(): void {
    if (!this.#o.trim || this.#stopped || this.#trimTimer || this.#trimming) return;
    this.#trimTimer = setTimeout(() => {
      this.#trimTimer = undefined;
      this.#trimming = true;
      void this.#trim(STRAGGLER_MS).finally(() => {
        this.#trimming = false;
        if (this.#ackedAbove.size > 0 || this.#trimmedTo < this.#ackFloor) this.#armTrim();
      });
    }, TRIM_MS);
  }

  /**
   * Removes the finished commands: those at or below the ack floor with one purge, then
   * each one acknowledged here at least `olderThanMs` ago that is still above it. Only once
   * the consumer has answered for the same sequences: a stream made anew numbers its
   * commands from 1 again.
   */
  async #trim(olderThanMs: number, withinMs = Number.POSITIVE_INFINITY): Promise<void> {
    const deadline = Date.now() + withinMs;
    const generation = this.#consumerGeneration;
    if (!(await this.#readFloor()) || generation !== this.#consumerGeneration) return;
    const before = Date.now() - olderThanMs;
    const stragglers = [...this.#ackedAbove].filter(([, at]) => at <= before).map(([seq]) => seq).slice(0, DELETES_PER_TRIM);
    for (let i = 0; i < stragglers.length && Date.now() < deadline && generation === this.#consumerGeneration; i += DELETES_AT_ONCE) {
      await Promise.all(stragglers.slice(i, i + DELETES_AT_ONCE).map((seq) => this.#deleteOne(seq)));
    }
    const deleted = stragglers.filter((seq) => !this.#ackedAbove.has(seq));
    if (deleted.length > 0) {
      this.#o.logger.debug({ partition: this.partition, floor: this.#ackFloor, deleted }, `Partition ${this.partition}: deleted ${deleted.length} finished commands above the ack floor ${this.#ackFloor}`);
    }
  }

  async #deleteOne(seq: number): Promise<void> {
    try {
      await this.#o.jsm.streams.deleteMessage(this.#o.stream, seq, false);
      this.#ackedAbove.delete(seq);
    } catch (err) {
      // Gone already (purged meanwhile, or deleted by another run of it): as good as deleted.
      if (isMessageGone(err)) this.#ackedAbove.delete(seq);
      else this.#o.logger.debug({ err, partition: this.partition, seq }, `Could not delete finished command ${seq}: ${errorMessage(err)}`);
    }
  }

  /** Reads the consumer's ack floor (see {@link #floorRead}); false when it could not, the last one read standing. */
  async #readFloor(): Promise<boolean> {
    try {
      await this.#floorRead(await this.#o.jsm.consumers.info(this.#o.stream, this.#o.consumerName));
      return true;
    } catch (err) {
      this.#o.logger.debug({ err, partition: this.partition }, `Could not read partition ${this.partition}'s ack floor: ${errorMessage(err)}`);
      return false;
    }
  }

  /**
   * Notes the consumer's ack floor, and removes the partition's commands at or below it
   * from a stream that keeps them. The floor read only grows here: a consumer that lost its
   * state starts from 0 again, but what was below the floor before was finished all the
   * same. A consumer made anew starts the count over; an answer about one older than the
   * last seen is dropped (answers may cross).
   */
  async #floorRead(info: ConsumerInfo): Promise<void> {
    const createdMs = Date.parse(info.created);
    if (this.#consumerCreatedMs !== undefined && createdMs < this.#consumerCreatedMs) return;
    if (this.#consumerCreatedMs !== undefined && createdMs > this.#consumerCreatedMs) {
      this.#consumerGeneration++;
      this.#ackFloor = 0;
      this.#trimmedTo = 0;
      this.#ackedAbove.clear();
    }
    this.#consumerCreatedMs = createdMs;
    this.#ackFloor = Math.max(this.#ackFloor, info.ack_floor.stream_seq);
    if (!this.#o.trim || this.#ackFloor <= this.#trimmedTo) return;
    const upTo = this.#ackFloor;
    const generation = this.#consumerGeneration;
    try {
      await this.#o.jsm.streams.purge(this.#o.stream, { filter: `${this.#o.subjectPrefix}.>`, seq: upTo + 1 });
      if (generation !== this.#consumerGeneration) return;
      this.#trimmedTo = Math.max(this.#trimmedTo, upTo);
      for (const seq of this.#ackedAbove.keys()) if (seq <= this.#trimmedTo) this.#ackedAbove.delete(seq);
      this.#o.logger.debug({ partition: this.partition, floor: upTo }, `Partition ${this.partition}: removed the finished commands up to ${upTo}`);
    } catch (err) {
      this.#o.logger.debug({ err, partition: this.partition }, `Could not remove partition ${this.partition}'s finished commands: ${errorMessage(err)}`);
    }
  }

  /** The stream sequence of the first stored message on `subject` from `from`, asked of the stream leader. */
  async #oldest(subject: string, from: number): Promise<number | undefined> {
    // The leader's get takes `next_by_subj` as the direct get does; the client's type omits it.
    const query: NextMsgRequest = { next_by_subj: subject, seq: from };
    const found = await this.#o.jsm.streams.getMessage(this.#o.stream, query as unknown as MsgRequest);
    return found?.seq;
  }
}
