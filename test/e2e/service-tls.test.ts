/**
 * Service calls over TLS: bin/hello-service serves TLS and requires a client certificate
 * (`--tls-cert`, `--tls-key`, `--tls-ca`); a processor whose services.json gives the CA
 * and a client certificate for HelloService runs hello_workflow to completion, and one
 * without the client certificate fails the call with a line that says so. A cluster of
 * its own: the call that cannot succeed keeps being retried, and must not reach another
 * file's processor on the suite's cluster.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrpcInvoker, loadServiceRegistry, RetryableError } from '../../packages/core/src/index.js';
import {
  type AppProcess,
  GUIDE_TIME,
  guideLine,
  invocationIdOf,
  receivedNames,
  runApp,
  startApp,
  startProcessor,
  stopApps,
  uniq,
} from '../support/app-process.js';
import { type NatsCluster, ownClusterPorts, startCluster } from '../support/nats-cluster.js';
import { type TestPki, createTestPki } from '../support/test-pki.js';

/** Ports past the suite's cluster (+0..2), leader-election.test.ts's (+3..5) and secured-nats.test.ts's (+6..8). */
const OFFSET = 9;

let cluster: NatsCluster;
let pki: TestPki;
let dir: string;
let hello: AppProcess;
let helloPort: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'service-tls-'));
  pki = await createTestPki(dir);
  cluster = await startCluster({
    ...ownClusterPorts(OFFSET),
  });
  hello = startApp('hello-service', {
    args: ['--tls-cert', pki.server.certFile, '--tls-key', pki.server.keyFile, '--tls-ca', pki.caFile],
    env: { GRPC_PORT: '0' },
  });
  const [, port] = await hello.waitForLine(guideLine(/HelloService listening on :(\d+)/));
  helloPort = Number(port);
  expect(hello.texts()).toContainEqual(expect.stringMatching(guideLine('Serving TLS; clients must show a certificate signed by the --tls-ca')));
}, 60_000);

afterAll(async () => {
  await stopApps();
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A services.json (in the certificates' directory, so paths are relative to it) giving HelloService `tls`. */
function servicesConfig(name: string, tls: Record<string, string>): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify({ services: { HelloService: { address: `localhost:${helloPort}`, tls } } }, null, 2));
  return path;
}

const CLIENT_CERT = { ca: 'ca.pem', cert: 'client-cert.pem', key: 'client-key.pem' };

/** A processor's env: this file's cluster and `config`. The certificate's name is `localhost` (an IP as TLS server name draws a warning from Node). */
function processorEnv(config: string): Record<string, string> {
  return { NATS_URL: cluster.url, SERVICES_CONFIG: config, SERVICE_HELLOSERVICE_ADDRESS: `localhost:${helloPort}` };
}

describe('a TLS HelloService that requires client certificates', () => {
  it('serves a processor whose services.json gives the CA and a client certificate: hello_workflow completes', async () => {
    const processor = await startProcessor(helloPort, { env: processorEnv(servicesConfig('services-tls.json', CLIENT_CERT)) });
    const name = `tls-${uniq()}`;
    const client = await runApp('client', { env: { NATS_URL: cluster.url, ARGS: JSON.stringify({ name }) } });
    expect(client.code, client.output()).toBe(0);
    expect(client.texts(), client.output()).toContainEqual(expect.stringContaining(`Hello, ${name}!`));
    await processor.waitForLine(guideLine(`Execution completed successfully: ${invocationIdOf(client)}`));
    expect(receivedNames(hello)).toContain(name);
    await stopApps([processor]);
  });

  it('fails the call of a processor without the client certificate, with a line saying the certificate is required', async () => {
    const processor = await startProcessor(helloPort, { env: processorEnv(servicesConfig('services-no-cert.json', { ca: CLIENT_CERT.ca })) });
    const name = `no-cert-${uniq()}`;
    const client = await runApp('client', { args: ['--no-wait'], env: { NATS_URL: cluster.url, ARGS: JSON.stringify({ name }) } });
    expect(client.code, client.output()).toBe(0);
    const id = invocationIdOf(client);
    // A TLS refusal is UNAVAILABLE to gRPC: retried like a service that is down, each attempt one line.
    await processor.waitForLine(
      new RegExp(
        `^${GUIDE_TIME}WARN Step 0 HelloService\\.SayHello failed \\(attempt 1\\), retrying in \\d+ ms: ` +
          `HelloService\\.SayHello failed with UNAVAILABLE \\(14\\): .*tlsv13 alert certificate required.*$`,
      ),
    );
    expect(processor.output()).not.toContain(`Execution completed successfully: ${id}`);
    // Each attempt one line: OpenSSL's own multi-line text does not break it.
    for (const line of processor.texts()) expect(line, processor.output()).toMatch(new RegExp(`^${GUIDE_TIME}`));
    expect(receivedNames(hello)).not.toContain(name);
    await stopApps([processor]);
  });

  it('refuses a call from the library without the client certificate, with a RetryableError saying why', async () => {
    const invoker = createGrpcInvoker(loadServiceRegistry({ configPath: servicesConfig('services-ca-only.json', { ca: CLIENT_CERT.ca }), env: {} }));
    try {
      const call = invoker.call('HelloService', 'SayHello', { name: 'nobody' });
      await expect(call).rejects.toBeInstanceOf(RetryableError);
      await expect(call).rejects.toThrow(/^HelloService\.SayHello failed with UNAVAILABLE \(14\): .*tlsv13 alert certificate required/);
    } finally {
      invoker.close();
    }
  });

  it('refuses --tls-cert without --tls-key in one line', async () => {
    const run = await runApp('hello-service', { args: ['--tls-cert', pki.server.certFile], env: { GRPC_PORT: '0' } });
    expect(run.code, run.output()).toBe(1);
    expect(run.texts()).toEqual([expect.stringMatching(guideLine('ERROR invalid --tls-cert: needs --tls-key too'))]);
  });
});
