/**
 * The processes of a chaos run besides NATS: HelloService and TicketService on fixed ports
 * (so a restarted one is found where it was), and processor slots, each with its own HTTP
 * port and log. A slot's process can be killed, stopped, continued and started again; every
 * process it ever ran is kept, with what it printed, for the logs and the repeat count.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type AppProcess, guideLine, startApp } from '../../test/support/app-process.js';

/** One processor place: the process running in it now (if any) and every earlier one. */
export interface ProcessorSlot {
  /** `processor-1` ..; also its log's name. */
  name: string;
  httpPort: number;
  current: AppProcess | undefined;
  /** SIGSTOPped right now: faults leave it alone. */
  stopped: boolean;
  history: AppProcess[];
}

/** How long an app may take to start, ms (generous: a NATS node may be down meanwhile). */
const START_TIMEOUT_MS = 60_000;
/** How long a SIGTERMed app may take to stop before it is killed, ms. */
const STOP_GRACE_MS = 30_000;

/** Starts, kills and restarts the apps; remembers who ended how. */
export class Fleet {
  readonly slots: ProcessorSlot[] = [];
  readonly services: AppProcess[] = [];
  /** Processes that ended without the run asking them to. */
  readonly crashes: string[] = [];
  readonly #expectedExits = new Set<AppProcess>();
  #hello: AppProcess | undefined;

  constructor(
    private readonly natsUrl: string,
    private readonly appPort: number,
    private readonly processorArgs: readonly string[],
  ) {}

  get helloPort(): number {
    return this.appPort;
  }

  get ticketPort(): number {
    return this.appPort + 1;
  }

  /** Starts HelloService and TicketService (JSON logs: each request with its idempotency key). */
  async startServices(): Promise<void> {
    await this.startHello();
    const ticket = startApp('ticket-service', { env: { GRPC_PORT: String(this.ticketPort), LOG_FORMAT: 'json', NATS_URL: this.natsUrl }, label: 'ticket-service#1' });
    this.#watch(ticket);
    this.services.push(ticket);
    await ticket.waitForLine(/TicketService listening on :\d+/, START_TIMEOUT_MS);
  }

  /** Starts HelloService on its port (again, after {@link killHello}). */
  async startHello(): Promise<void> {
    const incarnation = this.services.filter((s) => s.name.startsWith('hello-service')).length + 1;
    const hello = startApp('hello-service', {
      env: { GRPC_PORT: String(this.helloPort), LOG_FORMAT: 'json', NATS_URL: this.natsUrl },
      label: `hello-service#${incarnation}`,
    });
    this.#watch(hello);
    this.services.push(hello);
    this.#hello = hello;
    await hello.waitForLine(/HelloService listening on :\d+/, START_TIMEOUT_MS);
  }

  /** kill -9 HelloService. */
  async killHello(): Promise<void> {
    const hello = this.#hello;
    this.#hello = undefined;
    if (hello) await this.#end(hello, 'SIGKILL');
  }

  /** Adds a processor slot and starts a processor in it. */
  async addProcessor(): Promise<ProcessorSlot> {
    const n = this.slots.length + 1;
    const slot: ProcessorSlot = { name: `processor-${n}`, httpPort: this.appPort + 9 + n, current: undefined, stopped: false, history: [] };
    this.slots.push(slot);
    await this.startProcessor(slot);
    return slot;
  }

  /** Starts a processor in an empty slot and waits until it consumes. */
  async startProcessor(slot: ProcessorSlot): Promise<void> {
    const proc = startApp('processor', {
      args: ['--http-port', String(slot.httpPort), ...this.processorArgs],
      env: {
        NATS_URL: this.natsUrl,
        SERVICE_HELLOSERVICE_ADDRESS: `127.0.0.1:${this.helloPort}`,
        SERVICE_TICKETSERVICE_ADDRESS: `127.0.0.1:${this.ticketPort}`,
        LOG_FORMAT: 'pretty',
      },
      label: `${slot.name}#${slot.history.length + 1}`,
    });
    this.#watch(proc);
    slot.current = proc;
    slot.history.push(proc);
    try {
      await proc.waitForLine(guideLine(/Processor started, consuming from .*/), START_TIMEOUT_MS);
    } catch (err) {
      // The slot is empty again: the next fault round starts it anew.
      slot.current = undefined;
      proc.kill('SIGKILL');
      throw err;
    }
  }

  /** Ends a slot's process with `signal` (SIGKILL: kill -9; SIGTERM: a clean stop) and waits for its exit. */
  async endProcessor(slot: ProcessorSlot, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    const proc = slot.current;
    slot.current = undefined;
    if (proc) await this.#end(proc, signal);
  }

  /** The slots whose processor runs and is not stopped. */
  live(): ProcessorSlot[] {
    return this.slots.filter((s) => s.current !== undefined && !s.stopped);
  }

  /** The HTTP ports of the live processors. */
  httpPorts(): number[] {
    return this.live().map((s) => s.httpPort);
  }

  /** Every line HelloService and TicketService printed, over all their restarts. */
  serviceLines(): string[] {
    return this.services.flatMap((s) => s.texts());
  }

  /** Ends everything still running (SIGCONT first, so a stopped one can end) and writes every log under `dir`. */
  async stopAll(dir: string): Promise<void> {
    const all = [...this.services, ...this.slots.flatMap((s) => s.history)];
    for (const proc of all) proc.kill('SIGCONT');
    await Promise.all(all.map((proc) => this.#end(proc, 'SIGKILL')));
    for (const proc of all) writeFileSync(join(dir, `${proc.name.replace(/[^\w.#-]/g, '_')}.log`), `${proc.output()}\n`);
  }

  async #end(proc: AppProcess, signal: NodeJS.Signals): Promise<void> {
    this.#expectedExits.add(proc);
    proc.kill(signal);
    // A clean stop that hangs is ended the hard way; the log shows it.
    const hard = setTimeout(() => proc.kill('SIGKILL'), STOP_GRACE_MS);
    await proc.exited;
    clearTimeout(hard);
  }

  #watch(proc: AppProcess): void {
    void proc.exited.then((status) => {
      if (this.#expectedExits.has(proc)) return;
      const last = proc.texts().at(-1) ?? '';
      this.crashes.push(`${proc.name} exited by itself (${status.code ?? status.signal}): ${last}`);
    });
  }
}
