/**
 * How to reach a secured cluster, read from the environment under the names the `nats`
 * CLI uses:
 *
 * | variable | what it holds |
 * | --- | --- |
 * | `NATS_URL` | servers, comma-separated; `tls://` requires TLS; `user:password@` or `token@` authenticates |
 * | `NATS_USER`, `NATS_PASSWORD` | user and password (`NATS_USER` alone is a token, as with the CLI) |
 * | `NATS_TOKEN` | a token |
 * | `NATS_NKEY` | path of a file holding a user NKey seed (`SU...`) |
 * | `NATS_CREDS` | path of a `.creds` file (user JWT and seed) |
 * | `NATS_CA` | path of the CA certificate(s) the servers' certificates are checked against (PEM) |
 * | `NATS_CERT`, `NATS_KEY` | paths of this client's certificate and key (PEM), for servers that verify clients |
 *
 * Files are read once, here, so a bad path is one {@link InvalidArgumentError} naming the
 * variable and the file, before any connection is tried. Secrets stay out of messages:
 * {@link redactServer} is what logs show of a URL.
 */
import { type Authenticator, credsAuthenticator, nkeyAuthenticator, type NodeConnectionOptions } from '@nats-io/transport-node';
import { natsServers } from '../config.js';
import { InvalidArgumentError } from '../errors.js';
import { readPemFile, readSettingFile } from '../files.js';

/** Environment variables as `process.env` holds them. */
export type Env = Readonly<Record<string, string | undefined>>;

/** What {@link connectionSettings} derives: the servers to dial and the options that secure the connection. */
export interface ConnectionSettings {
  /** The servers, without credentials (nats.js does not read them from URLs). */
  servers: string[];
  /** The servers as logs may show them: a URL's password or token is `***`. */
  display: string[];
  /** Credentials and TLS options for `connect()`; empty for an open cluster. */
  options: Pick<NodeConnectionOptions, 'user' | 'pass' | 'token' | 'authenticator' | 'tls'>;
}

/** One way of authenticating, with the variable (or URL) it came from, for error messages. */
type Auth =
  | { source: string; kind: 'user'; user: string; pass: string }
  | { source: string; kind: 'token'; token: string }
  | { source: string; kind: 'authenticator'; authenticator: Authenticator };

/**
 * The servers and security options of a connection. `servers` defaults to `NATS_URL`; a
 * URL's `user:password@` (percent-encoded) or `token@` authenticates like `NATS_USER`.
 * Only one way of authenticating may be set. `tls://` on any server, or any of
 * `NATS_CA`/`NATS_CERT`/`NATS_KEY`, makes TLS required.
 * @throws InvalidArgumentError naming the variable: an unreadable file, a file without what
 * it should hold, a certificate without its key, or two ways of authenticating at once.
 */
export function connectionSettings(env: Env = process.env, servers?: readonly string[]): ConnectionSettings {
  const parsed = (servers ?? natsServers(env.NATS_URL)).map(parseServer);
  const auths: Auth[] = [];
  const fromUrl = urlCredentials(parsed);
  if (fromUrl) auths.push(fromUrl);
  auths.push(...envCredentials(env));
  if (auths.length > 1) {
    throw new InvalidArgumentError(
      'NATS credentials',
      `${auths.map((a) => a.source).join(' and ')} are both set; use one way to authenticate`,
    );
  }
  const tls = tlsOptions(env, parsed.some((s) => s.tls));
  const auth = auths[0];
  return {
    servers: parsed.map((s) => s.url),
    display: parsed.map((s) => s.display),
    options: {
      ...(auth?.kind === 'user' ? { user: auth.user, pass: auth.pass } : {}),
      ...(auth?.kind === 'token' ? { token: auth.token } : {}),
      ...(auth?.kind === 'authenticator' ? { authenticator: auth.authenticator } : {}),
      ...(tls ? { tls } : {}),
    },
  };
}

/** A server URL as logs may show it: `nats://app:***@host:4222`, `tls://***@host:4222`. */
export function redactServer(server: string): string {
  return parseServer(server).display;
}

interface ParsedServer {
  /** Without credentials. */
  url: string;
  display: string;
  tls: boolean;
  user?: string;
  pass?: string;
}

const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

function parseServer(server: string): ParsedServer {
  const scheme = SCHEME.exec(server)?.[1]?.toLowerCase();
  const rest = scheme === undefined ? server : server.slice(scheme.length + 3);
  const at = rest.lastIndexOf('@');
  const prefix = scheme === undefined ? '' : `${scheme}://`;
  const tls = scheme === 'tls';
  if (at < 0) return { url: server, display: server, tls };
  const hostPort = rest.slice(at + 1);
  const userInfo = rest.slice(0, at);
  const colon = userInfo.indexOf(':');
  const url = `${prefix}${hostPort}`;
  if (colon < 0) return { url, display: `${prefix}***@${hostPort}`, tls, user: decode(userInfo, server) };
  const user = decode(userInfo.slice(0, colon), server);
  return { url, display: `${prefix}${user}:***@${hostPort}`, tls, user, pass: decode(userInfo.slice(colon + 1), server) };
}

/** The `host:port` of a server URL, for messages that must not show its credentials. */
function hostOf(server: string): string {
  return server.slice(server.lastIndexOf('@') + 1);
}

function decode(part: string, server: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new InvalidArgumentError('NATS_URL', `the credentials of ${hostOf(server)} are not valid percent-encoding`);
  }
}

/** The credentials the URLs carry: every URL that carries some must carry the same. */
function urlCredentials(servers: readonly ParsedServer[]): Auth | undefined {
  const withCredentials = servers.filter((s) => s.user !== undefined);
  const first = withCredentials[0];
  if (first?.user === undefined) return undefined;
  if (withCredentials.some((s) => s.user !== first.user || s.pass !== first.pass)) {
    throw new InvalidArgumentError('NATS_URL', 'its servers carry different credentials; give them once');
  }
  return first.pass === undefined
    ? { source: 'a token in NATS_URL', kind: 'token', token: first.user }
    : { source: 'a user in NATS_URL', kind: 'user', user: first.user, pass: first.pass };
}

function envCredentials(env: Env): Auth[] {
  const auths: Auth[] = [];
  const user = nonEmpty(env.NATS_USER);
  const password = nonEmpty(env.NATS_PASSWORD);
  if (password !== undefined && user === undefined) {
    throw new InvalidArgumentError('NATS_PASSWORD', 'is set without NATS_USER');
  }
  if (user !== undefined) {
    auths.push(
      password === undefined
        ? { source: 'NATS_USER (a token)', kind: 'token', token: user }
        : { source: 'NATS_USER', kind: 'user', user, pass: password },
    );
  }
  const token = nonEmpty(env.NATS_TOKEN);
  if (token !== undefined) auths.push({ source: 'NATS_TOKEN', kind: 'token', token });
  const nkeyFile = nonEmpty(env.NATS_NKEY);
  if (nkeyFile !== undefined) auths.push({ source: 'NATS_NKEY', kind: 'authenticator', authenticator: nkeyFromFile(nkeyFile) });
  const credsFile = nonEmpty(env.NATS_CREDS);
  if (credsFile !== undefined) auths.push({ source: 'NATS_CREDS', kind: 'authenticator', authenticator: credsFromFile(credsFile) });
  return auths;
}

/** A user NKey seed: `SU` and 56 more base32 characters. */
const USER_SEED = /\bSU[A-Z2-7]{56}\b/;

function nkeyFromFile(path: string): Authenticator {
  const seed = readSettingFile('NATS_NKEY', path).match(USER_SEED)?.[0];
  if (seed === undefined) throw new InvalidArgumentError('NATS_NKEY', `${path} holds no user NKey seed (a line SU...)`);
  const authenticator = nkeyAuthenticator(new TextEncoder().encode(seed));
  checkSigns(authenticator, 'NATS_NKEY', path, 'its seed is not a valid NKey seed');
  return authenticator;
}

function credsFromFile(path: string): Authenticator {
  const authenticator = credsAuthenticator(new TextEncoder().encode(readSettingFile('NATS_CREDS', path)));
  checkSigns(authenticator, 'NATS_CREDS', path, 'not a .creds file (a user JWT and an NKey seed between BEGIN/END lines)');
  return authenticator;
}

/** nats.js parses a seed or creds file only when the server asks: signing a nonce now fails early instead. */
function checkSigns(authenticator: Authenticator, variable: string, path: string, problem: string): void {
  try {
    authenticator('check');
  } catch {
    throw new InvalidArgumentError(variable, `${path}: ${problem}`);
  }
}

function tlsOptions(env: Env, requiredByUrl: boolean): ConnectionSettings['options']['tls'] {
  const caFile = nonEmpty(env.NATS_CA);
  const certFile = nonEmpty(env.NATS_CERT);
  const keyFile = nonEmpty(env.NATS_KEY);
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new InvalidArgumentError(certFile === undefined ? 'NATS_KEY' : 'NATS_CERT', 'NATS_CERT and NATS_KEY go together: set both or neither');
  }
  if (!requiredByUrl && caFile === undefined && certFile === undefined) return undefined;
  return {
    ...(caFile !== undefined ? { ca: readPemFile('NATS_CA', caFile, 'CERTIFICATE') } : {}),
    ...(certFile !== undefined ? { cert: readPemFile('NATS_CERT', certFile, 'CERTIFICATE') } : {}),
    ...(keyFile !== undefined ? { key: readPemFile('NATS_KEY', keyFile, 'PRIVATE KEY') } : {}),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === undefined || trimmed === '' ? undefined : trimmed;
}
