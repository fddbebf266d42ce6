/**
 * The app processes `make bench` starts (bin/hello-service, bin/processor): spawned with
 * their output in a log file under .data/bench, stopped with SIGTERM (SIGKILL after a
 * grace period) at the end, and killed at once however the bench process ends.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A spawned app. */
export interface App {
  name: string;
  pid: number;
  logFile: string;
  /** Why the process is gone ('' while it runs). */
  exitReason(): string;
  /** The last lines of its log, for error messages. */
  logTail(lines?: number): string;
  /** SIGTERM, SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

const owned = new Set<ChildProcess>();

/** SIGKILLs every app still running; synchronous, for exit and signal handlers. */
export function killApps(): void {
  for (const child of owned) child.kill('SIGKILL');
  owned.clear();
}

process.on('exit', killApps);

/** Spawns `command args` with `env` added to ours, output to `<logDir>/<name>.log`. */
export function spawnApp(name: string, command: string, args: string[], env: Record<string, string>, logDir: string, cwd?: string): App {
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, `${name}.log`);
  const fd = openSync(logFile, 'w');
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', fd, fd], ...(cwd ? { cwd } : {}) });
  closeSync(fd);
  child.once('error', () => undefined); // reported through exitReason / the pid check below
  if (child.pid === undefined) throw new Error(`could not spawn ${command}`);
  owned.add(child);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      owned.delete(child);
      resolve();
    });
  });
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  return {
    name,
    pid: child.pid,
    logFile,
    exitReason: () => (gone() ? `exited (${child.exitCode !== null ? `code ${child.exitCode}` : child.signalCode})` : ''),
    logTail: (lines = 20) => {
      try {
        return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      } catch {
        return '(no log)';
      }
    },
    stop: async (graceMs = 15_000) => {
      if (gone()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A TCP port nobody listens on right now. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Waits until `check` answers true, failing early when the app exits. */
export async function waitUntil(app: App, what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reason = app.exitReason();
    if (reason !== '') throw new Error(`${app.name} ${reason} before ${what}; its log (${app.logFile}):\n${app.logTail()}`);
    if (await check().catch(() => false)) return;
    if (Date.now() >= deadline) throw new Error(`${app.name}: no ${what} after ${timeoutMs / 1000} s; its log (${app.logFile}):\n${app.logTail()}`);
    await sleep(100);
  }
}

/** True when something accepts TCP connections on host:port. */
export async function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
