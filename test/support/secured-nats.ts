/**
 * Secured NATS for tests: the certificates, the credentials and the server authorization
 * of a cluster whose clients must use TLS, show a client certificate the test CA signed,
 * and authenticate. One nats-server config cannot mix every way of authenticating, so
 * there are three kinds:
 *
 * - `users`: a user with a password and a user with an NKey, in one `authorization` block;
 * - `token`: one token (a token cannot sit beside users);
 * - `operator`: JWT mode, for `.creds` files: an operator, a system account and an
 *   account with JetStream, preloaded into a memory resolver, and one user's creds file.
 *
 * Everything is made in-process (`@peculiar/x509`, `@nats-io/jwt`): no `openssl`, no `nsc`.
 *
 * @example
 * const secured = await createNatsSecurity(dir, 'users');
 * const cluster = await startCluster({ ...ports, security: secured.security });
 * // clients: NATS_URL=cluster.url with secured.tlsEnv and e.g. NATS_NKEY=secured.nkeyFile
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createAccount, createOperator, createUser, encodeAccount, encodeOperator, encodeUser, fmtCreds } from '@nats-io/jwt';
import type { ClusterSecurity } from './nats-cluster.js';
import { type TestPki, createTestPki } from './test-pki.js';

/** How a secured cluster authenticates its clients. */
export type NatsAuthKind = 'users' | 'token' | 'operator';

/** What a secured cluster needs and what its clients authenticate with. */
export interface NatsSecurity {
  kind: NatsAuthKind;
  pki: TestPki;
  /** For `startCluster({ security })`. */
  security: ClusterSecurity;
  /** `NATS_CA`, `NATS_CERT`, `NATS_KEY` of a client the servers accept. */
  tlsEnv: Record<string, string>;
  /** `users`: the user with a password; the password needs percent-encoding in a URL. */
  user?: { name: string; password: string };
  /** `users`: a file holding the NKey user's seed, for `NATS_NKEY`. */
  nkeyFile?: string;
  /** `token`: the token. */
  token?: string;
  /** `operator`: the user's `.creds` file, for `NATS_CREDS`. */
  credsFile?: string;
}

/** Makes the certificates (under `dir`), the credentials and the authorization of one kind. */
export async function createNatsSecurity(dir: string, kind: NatsAuthKind): Promise<NatsSecurity> {
  const pki = await createTestPki(dir);
  const tls = { certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile };
  const tlsEnv = { NATS_CA: pki.caFile, NATS_CERT: pki.client.certFile, NATS_KEY: pki.client.keyFile };
  const base = { kind, pki, tlsEnv };
  if (kind === 'users') {
    const user = { name: 'app', password: 'pa55:w@rd/1' };
    const nkey = createUser();
    const nkeyFile = join(dir, 'app.nk');
    writeFileSync(nkeyFile, `${new TextDecoder().decode(nkey.getSeed())}\n`, { mode: 0o600 });
    const authorization = [
      `authorization {`,
      `  users: [`,
      `    { user: ${JSON.stringify(user.name)}, password: ${JSON.stringify(user.password)} }`,
      `    { nkey: ${nkey.getPublicKey()} }`,
      `  ]`,
      `}`,
    ].join('\n');
    return { ...base, security: { tls, authorization }, user, nkeyFile };
  }
  if (kind === 'token') {
    const token = randomBytes(16).toString('hex');
    return { ...base, security: { tls, authorization: `authorization { token: ${JSON.stringify(token)} }` }, token };
  }
  const { authorization, credsFile } = await operatorMode(dir);
  return { ...base, security: { tls, authorization }, credsFile };
}

/** Every account limit off, JetStream included (`-1`: unlimited). */
const UNLIMITED = {
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  wildcards: true,
  conn: -1,
  leaf: -1,
  mem_storage: -1,
  disk_storage: -1,
  streams: -1,
  consumer: -1,
};

/**
 * JWT mode: the operator signs a system account and an application account with
 * JetStream, both preloaded into a memory resolver; the application account signs the
 * user whose creds file clients use.
 */
async function operatorMode(dir: string): Promise<{ authorization: string; credsFile: string }> {
  const operator = createOperator();
  const system = createAccount();
  const account = createAccount();
  const user = createUser();
  const operatorJwt = await encodeOperator('durable-test', operator, { system_account: system.getPublicKey() });
  const systemJwt = await encodeAccount('SYS', system, {}, { signer: operator });
  const accountJwt = await encodeAccount('APP', account, { limits: UNLIMITED }, { signer: operator });
  const userJwt = await encodeUser('app', user, account);
  const credsFile = join(dir, 'app.creds');
  writeFileSync(credsFile, fmtCreds(userJwt, user), { mode: 0o600 });
  const authorization = [
    `operator: ${operatorJwt}`,
    `system_account: ${system.getPublicKey()}`,
    `resolver: MEMORY`,
    `resolver_preload: {`,
    `  ${system.getPublicKey()}: ${systemJwt}`,
    `  ${account.getPublicKey()}: ${accountJwt}`,
    `}`,
  ].join('\n');
  return { authorization, credsFile };
}
