/**
 * The engine on a secured cluster: every client connection must use TLS, show a client
 * certificate the cluster's CA signed, and authenticate. bin/processor, bin/client and
 * bin/inspect run hello_workflow to completion with each way of authenticating
 * (user and password in NATS_URL or in NATS_USER/NATS_PASSWORD, an NKey seed file, a
 * token, a .creds file), and a connection the servers refuse is one clear line, at once,
 * with no password in it. One server config cannot hold every way of authenticating, so
 * the cluster is started three times, one kind at a time (test/support/secured-nats.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AppName,
  type AppProcess,
  type HelloServiceApp,
  escapeRegExp,
  GUIDE_TIME,
  guideLine,
  invocationIdOf,
  runApp,
  runningApps,
  startHelloService,
  startProcessor,
  stopApps,
  uniq,
} from '../support/app-process.js';
import { type NatsCluster, ownClusterPorts, startCluster } from '../support/nats-cluster.js';
import { type NatsAuthKind, type NatsSecurity, createNatsSecurity } from '../support/secured-nats.js';

/** Ports past the suite's cluster (+0..2) and leader-election.test.ts's (+3..5). */
const OFFSET = 6;

type Env = Record<string, string>;

let hello: HelloServiceApp;
const dirs: string[] = [];

beforeAll(async () => {
  hello = await startHelloService();
});

afterAll(async () => {
  await stopApps();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Starts the cluster of one kind for the tests of a describe block; `secured()` gives it to them. */
function securedCluster(kind: NatsAuthKind): () => { cluster: NatsCluster; security: NatsSecurity } {
  let cluster: NatsCluster | undefined;
  let security: NatsSecurity | undefined;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), `secured-nats-${kind}-`));
    dirs.push(dir);
    security = await createNatsSecurity(dir, kind);
    cluster = await startCluster({
      ...ownClusterPorts(OFFSET),
      security: security.security,
    });
  }, 60_000);
  afterAll(async () => {
    // What a failed test left running; HelloService serves every block.
    await stopApps(runningApps().filter((app) => app !== hello));
    await cluster?.stop();
  });
  return () => {
    if (!cluster || !security) throw new Error('the secured cluster did not start');
    return { cluster, security };
  };
}

/**
 * bin/processor and bin/client, both with `env` (NATS_URL included), run hello_workflow to
 * completion; bin/inspect then shows its state. Returns everything they printed.
 */
async function runsHelloWorkflow(env: Env): Promise<AppProcess[]> {
  const name = `secured-${uniq()}`;
  const processor = await startProcessor(hello.port, { env });
  const client = await runApp('client', { env: { ...env, ARGS: JSON.stringify({ name }) } });
  expect(client.code, client.output()).toBe(0);
  expect(client.texts(), client.output()).toContainEqual(expect.stringMatching(guideLine(/Execution completed: status=completed/)));
  expect(client.texts(), client.output()).toContainEqual(expect.stringContaining(`Hello, ${name}!`));
  const id = invocationIdOf(client);
  await processor.waitForLine(guideLine(`Execution completed successfully: ${id}`));
  const inspect = await runApp('inspect', { args: [id], env });
  expect(inspect.code, inspect.output()).toBe(0);
  expect(inspect.texts(), inspect.output()).toContainEqual(expect.stringMatching(/Status: completed/));
  await stopApps([processor]);
  return [processor, client, inspect];
}

/**
 * Runs `app` (the processor retries an unreachable cluster for ever, so it proves the
 * refusal is not retried) and returns its one ERROR line; it must exit non-zero at once
 * and print no stack.
 */
async function refusedLine(app: AppName, env: Env): Promise<string> {
  const args = app === 'processor' ? ['--http-port', '0'] : app === 'inspect' ? ['ls'] : ['--no-wait'];
  const run = await runApp(app, { args, env });
  expect(run.code, run.output()).not.toBe(0);
  expect(run.code, run.output()).not.toBeNull();
  const errors = run.texts().filter((line) => / ERROR /.test(line));
  expect(errors, run.output()).toHaveLength(1);
  for (const line of run.texts()) expect(line, run.output()).toMatch(new RegExp(`^${GUIDE_TIME}`));
  expect(run.output()).not.toMatch(/retrying/);
  return errors[0]!;
}

/** The cluster's URLs with `userinfo@` in each. */
function urlsWith(cluster: NatsCluster, userinfo: string): string {
  return cluster.urls.map((url) => url.replace('tls://', `tls://${userinfo}@`)).join(',');
}

/** A pattern of the cluster's URLs as the refusal line shows them: `tls://127.0.0.1:port,...`, each with `prefix`. */
function shownUrls(cluster: NatsCluster, prefix = ''): string {
  return escapeRegExp(cluster.urls.map((url) => url.replace('tls://', `tls://${prefix}`)).join(','));
}

function expectNoSecret(outputs: AppProcess[], ...secrets: string[]): void {
  for (const out of outputs) for (const secret of secrets) expect(out.output(), `${out.name} printed a secret`).not.toContain(secret);
}

describe('a cluster requiring TLS, a client certificate and a user (password or NKey)', () => {
  const secured = securedCluster('users');

  it('runs a workflow with the user and password in NATS_URL, percent-encoded, and never prints the password', async () => {
    const { cluster, security } = secured();
    const { name, password } = security.user!;
    const outputs = await runsHelloWorkflow({ ...security.tlsEnv, NATS_URL: urlsWith(cluster, `${name}:${encodeURIComponent(password)}`) });
    expectNoSecret(outputs, password, encodeURIComponent(password));
  });

  it('runs a workflow with NATS_USER and NATS_PASSWORD', async () => {
    const { cluster, security } = secured();
    await runsHelloWorkflow({ ...security.tlsEnv, NATS_URL: cluster.url, NATS_USER: security.user!.name, NATS_PASSWORD: security.user!.password });
  });

  it('runs a workflow with an NKey seed file (NATS_NKEY)', async () => {
    const { cluster, security } = secured();
    await runsHelloWorkflow({ ...security.tlsEnv, NATS_URL: cluster.url, NATS_NKEY: security.nkeyFile! });
  });

  it('refuses a connection without credentials: one line from each app, not retried', async () => {
    const { cluster, security } = secured();
    const env = { ...security.tlsEnv, NATS_URL: cluster.url };
    for (const app of ['processor', 'client', 'inspect'] as const) {
      expect(await refusedLine(app, env)).toMatch(
        new RegExp(`^${GUIDE_TIME}ERROR NATS at ${shownUrls(cluster)} refused the connection: Authorization Violation$`),
      );
    }
  });

  it('refuses a wrong password, showing the URL without it', async () => {
    const { cluster, security } = secured();
    const line = await refusedLine('client', { ...security.tlsEnv, NATS_URL: urlsWith(cluster, 'app:not-the-password') });
    expect(line).toMatch(new RegExp(`ERROR NATS at ${shownUrls(cluster, 'app:***@')} refused the connection: Authorization Violation$`));
    expect(line).not.toContain('not-the-password');
  });

  it('refuses a client without a client certificate, saying it needs one', async () => {
    const { cluster, security } = secured();
    const env = { NATS_CA: security.tlsEnv.NATS_CA!, NATS_URL: cluster.url, NATS_NKEY: security.nkeyFile! };
    expect(await refusedLine('processor', env)).toMatch(
      /ERROR NATS at \S+ refused the connection: TLS handshake failed: the server requires a client certificate \(NATS_CERT, NATS_KEY\) \(.*certificate required\)$/,
    );
  });

  it('takes TLS for nats:// URLs when the servers require it, and refuses it without their CA, saying so', async () => {
    const { cluster, security } = secured();
    const env = { NATS_URL: cluster.url.replaceAll('tls://', 'nats://'), NATS_NKEY: security.nkeyFile! };
    expect(await refusedLine('client', env)).toMatch(
      /ERROR NATS at \S+ refused the connection: TLS handshake failed: the server's certificate is not signed by a trusted CA \(NATS_CA\)/,
    );
  });

  it('names the variable and the file when a credentials file cannot be read', async () => {
    const { cluster, security } = secured();
    const missing = join(security.pki.dir, 'absent.creds');
    const line = await refusedLine('processor', { ...security.tlsEnv, NATS_URL: cluster.url, NATS_CREDS: missing });
    expect(line).toMatch(new RegExp(`^${GUIDE_TIME}ERROR invalid NATS_CREDS: cannot read ${escapeRegExp(missing)}: no such file$`));
  });
});

describe('a cluster requiring TLS, a client certificate and a token', () => {
  const secured = securedCluster('token');

  it('runs a workflow with NATS_TOKEN, and never prints the token', async () => {
    const { cluster, security } = secured();
    const outputs = await runsHelloWorkflow({ ...security.tlsEnv, NATS_URL: cluster.url, NATS_TOKEN: security.token! });
    expectNoSecret(outputs, security.token!);
  });

  it('runs a workflow with the token in NATS_URL', async () => {
    const { cluster, security } = secured();
    const outputs = await runsHelloWorkflow({ ...security.tlsEnv, NATS_URL: urlsWith(cluster, security.token!) });
    expectNoSecret(outputs, security.token!);
  });
});

describe('a cluster in JWT mode (operator, accounts, a memory resolver) requiring TLS and a client certificate', () => {
  const secured = securedCluster('operator');

  it('runs a workflow with a .creds file (NATS_CREDS)', async () => {
    const { cluster, security } = secured();
    await runsHelloWorkflow({ ...security.tlsEnv, NATS_URL: cluster.url, NATS_CREDS: security.credsFile! });
  });

  it('refuses a connection without the creds', async () => {
    const { cluster, security } = secured();
    expect(await refusedLine('client', { ...security.tlsEnv, NATS_URL: cluster.url })).toMatch(/refused the connection: Authorization Violation$/);
  });
});
