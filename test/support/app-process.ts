/**
 * Runs the real apps (`bin/processor`, `bin/hello-service`, `bin/client`, `bin/inspect`) as
 * child processes for end-to-end tests, and waits on what they print.
 *
 * Every line a process prints (stdout and stderr, split on newlines) is kept with the time
 * it arrived. Waiting is event-driven: a wait is woken by each new line and by the exit,
 * fails at its deadline (or as soon as the process has exited without the awaited line)
 * with everything the process printed, and never sleeps a fixed time.
 *
 * `E2E_ECHO=1` echoes every line, prefixed with the app's name, to the test's stderr.
 *
 * Every process started here is tracked: `stopApps()` (call it from afterEach/afterAll)
 * SIGKILLs what still runs and waits for it to be gone, and the test worker kills the rest
 * when it exits, however it exits.
 *
 * @example
 * const service = await startHelloService({ HELLO_DELAY_MS: '200' });
 * const processor = await startProcessor(service.port);
 * const client = await runApp('client', { env: serviceEnv(service.port) });
 * expect(client.code).toBe(0);
 * await processor.waitForLine(/Execution completed successfully: /);
 * afterAll(() => stopApps());
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import { REPO_ROOT } from './nats-cluster.js';

/** The apps `scripts/build.mjs` puts in `bin/`. */
export type AppName = 'processor' | 'hello-service' | 'client' | 'inspect' | 'ticket-service';

/** One line a process printed. */
export interface OutputLine {
  stream: 'stdout' | 'stderr';
  text: string;
  /** `Date.now()` when the test process read it. */
  at: number;
}

/** How a process ended. */
export interface ExitStatus {
  /** The exit code, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Options of {@link startApp}. */
export interface StartOptions {
  /** Command-line arguments. */
  args?: string[];
  /**
   * Environment on top of the test's own: `NATS_URL` defaults to the test cluster,
   * `LOG_FORMAT` to `pretty` and `LOG_LEVEL` to `info`. A value of `undefined` removes a variable.
   */
  env?: Record<string, string | undefined>;
  /** Name in error messages. @default the app name */
  label?: string;
}

/** The default deadline of every wait, ms. */
export const DEFAULT_TIMEOUT_MS = 20_000;

/** `2024/11/10 22:00:00 ` at the start of each of the guide's lines. */
export const GUIDE_TIME = String.raw`\d{4}/\d\d/\d\d \d\d:\d\d:\d\d `;

/** A UUID as the client makes them. */
export const UUID = String.raw`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`;

/** Escapes text for use inside a RegExp. */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A guide line (`<date> <time> <message>`) whose message is exactly `message`. */
export function guideLine(message: string | RegExp): RegExp {
  const body = typeof message === 'string' ? escapeRegExp(message) : message.source;
  return new RegExp(`^${GUIDE_TIME}${body}$`);
}

/** `E2E_ECHO=1` echoes every line of every app to the test's stderr, for debugging. */
const ECHO = process.env.E2E_ECHO === '1';

const running = new Set<AppProcess>();
let exitHookInstalled = false;

/** A running (or ended) app process and everything it printed. */
export class AppProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Every line, stdout and stderr interleaved in arrival order. */
  readonly lines: OutputLine[] = [];
  /** Resolves once the process has exited and its output is fully read. */
  readonly exited: Promise<ExitStatus>;
  /** When it was spawned (`Date.now()`). */
  readonly startedAt = Date.now();
  #status: ExitStatus | undefined;
  #endedAt: number | undefined;
  readonly #waiters = new Set<() => void>();
  readonly #partial = { stdout: '', stderr: '' };

  constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.child = child;
    child.stdout?.on('data', (chunk: Buffer) => this.#read('stdout', chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => this.#read('stderr', chunk.toString('utf8')));
    this.exited = new Promise<ExitStatus>((resolve) => {
      // 'close' comes after 'exit' and after both pipes are drained: no line is missed.
      child.once('close', (code, signal) => {
        this.#flush('stdout');
        this.#flush('stderr');
        this.#status = { code, signal };
        this.#endedAt = Date.now();
        running.delete(this);
        this.#wake();
        resolve(this.#status);
      });
      child.once('error', (err) => {
        this.lines.push({ stream: 'stderr', text: `[spawn error] ${err.message}`, at: Date.now() });
        if (child.pid === undefined) {
          this.#status = { code: null, signal: null };
          running.delete(this);
          this.#wake();
          resolve(this.#status);
        }
      });
    });
  }

  /** The exit status once it has ended, else undefined. */
  get status(): ExitStatus | undefined {
    return this.#status;
  }

  /** How long it ran, ms (so far, while it runs). */
  get durationMs(): number {
    return (this.#endedAt ?? Date.now()) - this.startedAt;
  }

  /** The texts of every line, or of one stream's. */
  texts(stream?: 'stdout' | 'stderr'): string[] {
    return this.lines.filter((l) => stream === undefined || l.stream === stream).map((l) => l.text);
  }

  /** Everything printed, for error messages. */
  output(): string {
    return this.lines.map((l) => (l.stream === 'stderr' ? `[stderr] ${l.text}` : l.text)).join('\n');
  }

  /** Lines matching `pattern`. */
  matching(pattern: RegExp): OutputLine[] {
    return this.lines.filter((l) => pattern.test(l.text));
  }

  /** The match of every line matching `pattern`, in order. */
  matches(pattern: RegExp): RegExpMatchArray[] {
    return this.lines.flatMap((l) => {
      const m = l.text.match(pattern);
      return m ? [m] : [];
    });
  }

  /**
   * The first line (from line index `from` on) matching `pattern`. Fails after `timeoutMs`,
   * or once the process has exited without printing it, with the whole output.
   */
  async waitForLine(pattern: RegExp, timeoutMs = DEFAULT_TIMEOUT_MS, from = 0): Promise<RegExpMatchArray> {
    return this.waitFor(`line matching ${pattern}`, () => {
      for (let i = from; i < this.lines.length; i++) {
        const m = this.lines[i]!.text.match(pattern);
        if (m) return m;
      }
      return undefined;
    }, timeoutMs);
  }

  /** Waits until at least `count` lines match `pattern`; returns their matches. */
  async waitForLines(pattern: RegExp, count: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<RegExpMatchArray[]> {
    return this.waitFor(`${count} lines matching ${pattern}`, () => {
      const found = this.matches(pattern);
      return found.length >= count ? found : undefined;
    }, timeoutMs);
  }

  /**
   * Waits until `check` returns something other than undefined, re-checking on every new
   * line and on exit. Fails after `timeoutMs`, or when the process has exited and `check`
   * still says no, naming `what` and showing the output.
   */
  waitFor<T>(what: string, check: () => T | undefined, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const deadline = setTimeout(() => finish(new Error(`${this.name}: no ${what} within ${timeoutMs} ms`)), timeoutMs);
      const finish = (err?: Error, value?: T) => {
        clearTimeout(deadline);
        this.#waiters.delete(poll);
        if (err) reject(new Error(`${err.message}; its output:\n${this.output()}`));
        else resolve(value as T);
      };
      const poll = () => {
        let value: T | undefined;
        try {
          value = check();
        } catch (err) {
          finish(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        if (value !== undefined) finish(undefined, value);
        else if (this.#status) {
          const how = this.#status.code !== null ? `code ${this.#status.code}` : `signal ${this.#status.signal}`;
          finish(new Error(`${this.name}: exited (${how}) with no ${what}`));
        }
      };
      this.#waiters.add(poll);
      poll();
    });
  }

  /** Waits for the exit; fails after `timeoutMs` with the output (the process is then SIGKILLed). */
  async waitForExit(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ExitStatus> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.kill('SIGKILL');
        reject(new Error(`${this.name}: did not exit within ${timeoutMs} ms (killed); its output:\n${this.output()}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a signal if it still runs; false when it had already ended. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    if (this.#status || this.child.exitCode !== null || this.child.signalCode !== null) return false;
    return this.child.kill(signal);
  }

  /** Sends `signal` and waits for the exit (SIGKILL and failure after `timeoutMs`). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ExitStatus> {
    this.kill(signal);
    return this.waitForExit(timeoutMs);
  }

  #read(stream: 'stdout' | 'stderr', text: string): void {
    const parts = (this.#partial[stream] + text).split('\n');
    this.#partial[stream] = parts.pop() ?? '';
    const at = Date.now();
    for (const part of parts) {
      const line = { stream, text: part.replace(/\r$/, ''), at };
      this.lines.push(line);
      if (ECHO) process.stderr.write(`[${this.name}${stream === 'stderr' ? ' stderr' : ''}] ${line.text}\n`);
    }
    if (parts.length > 0) this.#wake();
  }

  #flush(stream: 'stdout' | 'stderr'): void {
    if (this.#partial[stream] !== '') {
      this.lines.push({ stream, text: this.#partial[stream], at: Date.now() });
      this.#partial[stream] = '';
    }
  }

  #wake(): void {
    for (const poll of [...this.#waiters]) poll();
  }
}

/** The test cluster's URL: `inject('natsUrl')` inside vitest, else `NATS_URL`. */
export function testNatsUrl(): string {
  try {
    const url = inject('natsUrl');
    if (url) return url;
  } catch {
    // not inside a vitest worker
  }
  const url = process.env.NATS_URL;
  if (!url) throw new Error('no test cluster: run under vitest (global setup) or set NATS_URL');
  return url;
}

/** Starts `bin/<app>`. The binaries must be built (`node scripts/build.mjs`). */
export function startApp(app: AppName, options: StartOptions = {}): AppProcess {
  const bin = join(REPO_ROOT, 'bin', app);
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`node scripts/build.mjs\` first`);
  return startCommand(bin, { ...options, label: options.label ?? app });
}

/**
 * Starts any program (a path from the repository root, or on PATH) the way {@link startApp}
 * starts the apps: same environment defaults, tracked, output kept.
 */
export function startCommand(command: string, options: StartOptions = {}): AppProcess {
  const env: Record<string, string> = {};
  const merged = { ...process.env, NATS_URL: testNatsUrl(), LOG_FORMAT: 'pretty', LOG_LEVEL: 'info', ...options.env };
  for (const [key, value] of Object.entries(merged)) if (value !== undefined) env[key] = value;
  const child = spawn(command, options.args ?? [], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = new AppProcess(options.label ?? command, child);
  running.add(proc);
  installExitHook();
  return proc;
}

/** Runs `bin/<app>` to its end; fails (after killing it) when it runs past `timeoutMs`. */
export async function runApp(app: AppName, options: StartOptions & { timeoutMs?: number } = {}): Promise<AppProcess & { code: number | null }> {
  const proc = startApp(app, options);
  const status = await proc.waitForExit(options.timeoutMs ?? 40_000);
  return Object.assign(proc, { code: status.code });
}

/** SIGKILLs every app started here that still runs (or only `only`), and waits until they are gone. */
export async function stopApps(only?: Iterable<AppProcess>): Promise<void> {
  const targets = only ? [...only] : [...running];
  for (const proc of targets) proc.kill('SIGKILL');
  await Promise.all(targets.map((proc) => proc.exited));
}

/** Apps still running. */
export function runningApps(): AppProcess[] {
  return [...running];
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = () => {
    for (const proc of running) proc.kill('SIGKILL');
  };
  process.on('exit', killAll);
  if (process.connected) process.once('disconnect', killAll);
}

/** The env that points the processor or client at a HelloService on `port`. */
export function serviceEnv(port: number): Record<string, string> {
  return { SERVICE_HELLOSERVICE_ADDRESS: `127.0.0.1:${port}` };
}

/** A started HelloService app and the port it listens on. */
export interface HelloServiceApp extends AppProcess {
  port: number;
}

/**
 * Starts `bin/hello-service` on a free port (GRPC_PORT=0: the service binds one and
 * prints it) and waits until it listens.
 */
export async function startHelloService(env: Record<string, string> = {}, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<HelloServiceApp> {
  const proc = startApp('hello-service', { env: { GRPC_PORT: '0', ...env } });
  const [, port] = await proc.waitForLine(guideLine(/HelloService listening on :(\d+)/), timeoutMs);
  return Object.assign(proc, { port: Number(port) });
}

/**
 * Starts `bin/processor` calling the HelloService on `port` and waits for `Processor started`.
 * Its HTTP API is off (`--http-port 0`) unless `args` say otherwise: the default port 8080
 * may be taken by another processor on the machine.
 */
export async function startProcessor(
  port: number,
  options: { args?: string[]; env?: Record<string, string>; label?: string; timeoutMs?: number } = {},
): Promise<AppProcess> {
  const proc = startApp('processor', {
    args: (options.args ?? []).includes('--http-port') ? (options.args ?? []) : ['--http-port', '0', ...(options.args ?? [])],
    env: { ...serviceEnv(port), ...options.env },
    ...(options.label ? { label: options.label } : {}),
  });
  await proc.waitForLine(guideLine('Processor started, consuming from processor-1'), options.timeoutMs ?? 40_000);
  return proc;
}

/** The invocation ID a client printed (`Invocation ID: <uuid>`). */
export function invocationIdOf(client: AppProcess): string {
  const m = client.matches(new RegExp(`^${GUIDE_TIME}  Invocation ID: (${UUID})$`))[0];
  if (!m) throw new Error(`${client.name} printed no invocation ID; its output:\n${client.output()}`);
  return m[1]!;
}

/** The names HelloService received (`Received SayHello request: name=<name>`), in order. */
export function receivedNames(service: AppProcess): string[] {
  return service.matches(new RegExp(`^${GUIDE_TIME}Received SayHello request: name=(.*)$`)).map((m) => m[1]!);
}

/** A short unique token for names, keys and IDs of one test. */
export function uniq(): string {
  return `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}
