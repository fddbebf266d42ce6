import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nkeys } from '@nats-io/nats-core';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { connectionSettings, redactServer } from './connection-settings.js';

const dir = mkdtempSync(join(tmpdir(), 'connection-settings-'));
const seed = new TextDecoder().decode(nkeys.createUser().getSeed());
const nkeyFile = write('user.nk', `${seed}\n`);
const pemCert = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const pemKey = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function refusal(env: Record<string, string>, servers?: string[]): InvalidArgumentError {
  try {
    connectionSettings(env, servers);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    return err as InvalidArgumentError;
  }
  throw new Error('expected an InvalidArgumentError');
}

describe('connectionSettings', () => {
  it('leaves an open cluster as it is', () => {
    const settings = connectionSettings({ NATS_URL: 'nats://a:4222,nats://b:4222' });
    expect(settings.servers).toEqual(['nats://a:4222', 'nats://b:4222']);
    expect(settings.options).toEqual({});
  });

  it('takes a percent-encoded user and password out of NATS_URL, and shows it redacted', () => {
    const settings = connectionSettings({ NATS_URL: 'nats://app:pa55%3Aw%40rd@a:4222,nats://app:pa55%3Aw%40rd@b:4222' });
    expect(settings.servers).toEqual(['nats://a:4222', 'nats://b:4222']);
    expect(settings.options).toEqual({ user: 'app', pass: 'pa55:w@rd' });
    expect(settings.display).toEqual(['nats://app:***@a:4222', 'nats://app:***@b:4222']);
  });

  it('reads `token@` in a URL as a token, never showing it', () => {
    const settings = connectionSettings({}, ['tls://s3cret@a:4222']);
    expect(settings.options).toEqual({ token: 's3cret', tls: {} });
    expect(redactServer('tls://s3cret@a:4222')).toBe('tls://***@a:4222');
  });

  it('requires TLS for tls:// URLs, and reads the CA and client certificate files', () => {
    expect(connectionSettings({}, ['tls://a:4222']).options).toEqual({ tls: {} });
    const env = { NATS_CA: write('ca.pem', pemCert), NATS_CERT: write('cert.pem', pemCert), NATS_KEY: write('key.pem', pemKey) };
    expect(connectionSettings(env, ['nats://a:4222']).options).toEqual({ tls: { ca: pemCert, cert: pemCert, key: pemKey } });
  });

  it('follows the nats CLI: NATS_USER with NATS_PASSWORD is a user, NATS_USER alone a token', () => {
    expect(connectionSettings({ NATS_USER: 'app', NATS_PASSWORD: 'pw' }, ['a:4222']).options).toEqual({ user: 'app', pass: 'pw' });
    expect(connectionSettings({ NATS_USER: 'tok' }, ['a:4222']).options).toEqual({ token: 'tok' });
    expect(connectionSettings({ NATS_TOKEN: 'tok' }, ['a:4222']).options).toEqual({ token: 'tok' });
  });

  it('signs with the seed of NATS_NKEY and the creds of NATS_CREDS', () => {
    const nkey = connectionSettings({ NATS_NKEY: nkeyFile }, ['a:4222']).options.authenticator;
    expect(typeof nkey === 'function' && nkey('nonce')).toMatchObject({ nkey: expect.stringMatching(/^U/), sig: expect.any(String) });
    const creds = write('user.creds', `-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QifQ.e30.c2ln\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`);
    const jwt = connectionSettings({ NATS_CREDS: creds }, ['a:4222']).options.authenticator;
    expect(typeof jwt === 'function' && jwt('nonce')).toMatchObject({ jwt: 'eyJ0eXAiOiJKV1QifQ.e30.c2ln', sig: expect.any(String) });
  });

  it('names the variable and the file when a file cannot be read or holds the wrong thing', () => {
    expect(refusal({ NATS_CREDS: join(dir, 'missing.creds') }).message).toBe(`invalid NATS_CREDS: cannot read ${join(dir, 'missing.creds')}: no such file`);
    expect(refusal({ NATS_NKEY: dir }).message).toBe(`invalid NATS_NKEY: cannot read ${dir}: it is a directory`);
    const notCreds = write('not.creds', 'hello\n');
    expect(refusal({ NATS_CREDS: notCreds }).message).toBe(`invalid NATS_CREDS: ${notCreds}: not a .creds file (a user JWT and an NKey seed between BEGIN/END lines)`);
    expect(refusal({ NATS_NKEY: notCreds }).message).toBe(`invalid NATS_NKEY: ${notCreds} holds no user NKey seed (a line SU...)`);
    expect(refusal({ NATS_CA: notCreds }).message).toBe(`invalid NATS_CA: ${notCreds} holds no PEM CERTIFICATE`);
    expect(refusal({ NATS_CERT: write('c.pem', pemCert) }).field).toBe('NATS_CERT');
  });

  it('refuses two ways of authenticating at once, naming both', () => {
    expect(refusal({ NATS_TOKEN: 't', NATS_NKEY: nkeyFile }).message).toBe('invalid NATS credentials: NATS_TOKEN and NATS_NKEY are both set; use one way to authenticate');
    expect(refusal({ NATS_USER: 'u', NATS_PASSWORD: 'p' }, ['nats://v:q@a:4222']).message).toMatch(/a user in NATS_URL and NATS_USER are both set/);
    expect(refusal({ NATS_PASSWORD: 'p' }).message).toBe('invalid NATS_PASSWORD: is set without NATS_USER');
    expect(refusal({}, ['nats://u:p@a:4222', 'nats://u:other@b:4222']).field).toBe('NATS_URL');
  });

  it('never puts a password or token in a message', () => {
    const message = refusal({}, ['nats://u:s3cret@a:4222', 'nats://u:%zz@b:4222']).message;
    expect(message).not.toContain('s3cret');
    expect(message).not.toContain('%zz');
  });
});
