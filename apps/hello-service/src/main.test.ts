import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createGrpcInvoker, loadServiceRegistry } from '@durable/core';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const LINE_TIME = String.raw`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d `;
let child: ChildProcess | undefined;

afterEach(() => {
  if (child?.exitCode === null) child.kill('SIGKILL');
});

/**
 * Collects the process's stdout lines; `waitFor` resolves with the first match, or fails
 * after the deadline or once the process has exited without printing it.
 */
function watchLines(proc: ChildProcess) {
  const lines: string[] = [];
  let pending = '';
  let stderr = '';
  let exited = false;
  const waiters: Array<() => void> = [];
  const wakeAll = () => {
    for (const wake of waiters.splice(0)) wake();
  };
  proc.stdout?.on('data', (chunk: Buffer) => {
    const parts = (pending + chunk.toString()).split('\n');
    pending = parts.pop() ?? '';
    lines.push(...parts);
    wakeAll();
  });
  proc.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  proc.on('close', () => {
    exited = true;
    wakeAll();
  });
  const waitFor = async (pattern: RegExp, deadlineMs = 20_000): Promise<RegExpMatchArray> => {
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      for (const line of lines) {
        const match = line.match(pattern);
        if (match) return match;
      }
      const left = deadline - Date.now();
      if (left <= 0 || exited) {
        const why = exited ? `before the process exited (${proc.exitCode})` : `within ${deadlineMs} ms`;
        throw new Error(`no line matching ${pattern} ${why}; stdout:\n${lines.join('\n')}\nstderr:\n${stderr}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left); // the deadline; a new line wakes us first
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  };
  return { lines, waitFor };
}

describe('hello-service main', () => {
  it('prints the guide’s lines, serves SayHello on GRPC_PORT and exits 0 on SIGINT', async () => {
    child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
      env: { ...process.env, GRPC_PORT: '0', LOG_FORMAT: 'pretty', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out = watchLines(child);
    const [, port] = await out.waitFor(new RegExp(`${LINE_TIME}HelloService listening on :(\\d+)$`));
    expect(out.lines[0]).toMatch(new RegExp(`${LINE_TIME}Starting HelloService gRPC server\\.\\.\\.$`));

    const invoker = createGrpcInvoker(loadServiceRegistry({ addresses: { HelloService: `127.0.0.1:${port}` } }));
    try {
      await invoker.call('HelloService', 'SayHello', { name: 'World' });
    } finally {
      invoker.close();
    }
    await out.waitFor(new RegExp(`${LINE_TIME}Received SayHello request: name=World$`));

    const exited = once(child, 'close');
    child.kill('SIGINT');
    const [code] = await exited;
    expect(code).toBe(0);
    expect(out.lines).toContainEqual(expect.stringMatching(/Received SIGINT, shutting down\.\.\.$/));
  });
});
