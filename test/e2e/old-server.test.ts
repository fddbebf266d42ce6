/**
 * A nats-server older than the engine needs is refused at connect, in one line that names
 * its version, its address and the way out, and every app exits non-zero at once (the
 * processor does not retry it as if the cluster were unreachable). The old server is
 * Debian 13's nats-server 2.10, fetched once into .tools/ by scripts/install-nats-server.sh.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats, ErrorCode, ServerVersionError } from '../../packages/core/src/index.js';
import { type AppName, type AppProcess, GUIDE_TIME, runApp, startCommand, stopApps } from '../support/app-process.js';
import { REPO_ROOT } from '../support/nats-cluster.js';

const TOO_OLD = /nats-server 2\.10\.\d+ at 127\.0\.0\.1:\d+ is too old: this engine needs 2\.12 or newer \(scripts\/install-nats-server\.sh fetches one\)$/;

let oldServer: AppProcess;
let url: string;

beforeAll(async () => {
  const script = join(REPO_ROOT, 'scripts/install-nats-server.sh');
  const binary = execFileSync(script, ['--debian-suite', 'trixie', '--into', join(REPO_ROOT, '.tools/nats-server-trixie')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
  // One plain server (no JetStream, no cluster) on a port of its choosing: the check is
  // made on the server's INFO, before anything else is asked of it.
  oldServer = startCommand(binary, { args: ['-a', '127.0.0.1', '-p', '-1'], label: 'nats-server 2.10' });
  const [, port] = await oldServer.waitForLine(/Listening for client connections on 127\.0\.0\.1:(\d+)/);
  await oldServer.waitForLine(/Server is ready/);
  url = `nats://127.0.0.1:${port}`;
}, 120_000);

afterAll(async () => {
  await stopApps();
});

describe('a nats-server older than 2.12', () => {
  it('is refused by connectNats with a ServerVersionError, not retried', async () => {
    const refused = connectNats({ servers: [url] });
    await expect(refused).rejects.toBeInstanceOf(ServerVersionError);
    const err = (await refused.catch((e: unknown) => e)) as ServerVersionError;
    expect(err.code).toBe(ErrorCode.ServerVersion);
    expect(err.serverVersion).toMatch(/^2\.10\./);
    expect(err.message).toMatch(TOO_OLD);
  });

  const apps: [AppName, string[]][] = [
    ['processor', ['--http-port', '0']],
    ['client', ['--no-wait']],
    ['inspect', ['ls']],
  ];
  for (const [app, args] of apps) {
    it(`makes bin/${app} print one line and exit non-zero`, async () => {
      const run = await runApp(app, { args, env: { NATS_URL: url } });
      expect(run.code, run.output()).not.toBe(0);
      expect(run.code, run.output()).not.toBeNull();
      const errors = run.texts().filter((line) => / ERROR /.test(line));
      expect(errors, run.output()).toHaveLength(1);
      expect(errors[0], run.output()).toMatch(new RegExp(`^${GUIDE_TIME}ERROR ${TOO_OLD.source}`));
      // Nothing else went wrong: every line is a log line, no stack trace.
      for (const line of run.texts()) expect(line, run.output()).toMatch(new RegExp(`^${GUIDE_TIME}`));
    });
  }
});
