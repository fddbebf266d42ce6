/**
 * Certificates for tests of TLS: a throwaway CA and the server and client certificates it
 * signs, written as PEM files. Made in-process with `@peculiar/x509` over WebCrypto, so no
 * `openssl` is needed. Keys are ECDSA P-256, which nats-server, grpc-js and Node all accept.
 *
 * @example
 * const pki = await createTestPki(dir);
 * // server: pki.server.certFile / keyFile, trusting pki.caFile for client certificates
 * // client: pki.caFile to trust the server, pki.client.certFile / keyFile to prove itself
 */
import { webcrypto } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
// @peculiar/x509 2.x resolves its algorithms through tsyringe, which needs this polyfill loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

const crypto = webcrypto;
// It finds WebCrypto by itself only in browsers.
x509.cryptoProvider.set(crypto as unknown as Parameters<typeof x509.cryptoProvider.set>[1]);

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 24 * 60 * 60 * 1000;

/** A certificate and its private key, as PEM files. */
export interface CertFiles {
  certFile: string;
  keyFile: string;
}

/** A CA and what it signed, under one directory. */
export interface TestPki {
  dir: string;
  /** The CA's certificate: what clients trust servers by, and servers clients. */
  caFile: string;
  /** For `localhost` and `127.0.0.1`, usable as server (and client) certificate. */
  server: CertFiles;
  /** A client certificate (CN `durable-test-client`). */
  client: CertFiles;
  /** A client certificate from another CA, which the servers must refuse. */
  strangerClient: CertFiles;
}

interface Issuer {
  cert: x509.X509Certificate;
  keys: webcrypto.CryptoKeyPair;
}

/** Makes a CA, a server certificate, a client certificate and one from an unknown CA, as PEM files under `dir`. */
export async function createTestPki(dir: string): Promise<TestPki> {
  mkdirSync(dir, { recursive: true });
  const ca = await createCa('durable test CA');
  const stranger = await createCa('some other CA');
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca.cert.toString('pem'));
  return {
    dir,
    caFile,
    server: await issue(ca, { commonName: 'localhost', hosts: ['localhost', '127.0.0.1'] }, join(dir, 'server')),
    client: await issue(ca, { commonName: 'durable-test-client' }, join(dir, 'client')),
    strangerClient: await issue(stranger, { commonName: 'stranger' }, join(dir, 'stranger')),
  };
}

async function createCa(commonName: string): Promise<Issuer> {
  const keys = await crypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=${commonName}`,
    ...validity(),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, keys };
}

/** Signs a certificate good for TLS servers and clients; `hosts` become its subject alternative names. */
async function issue(ca: Issuer, subject: { commonName: string; hosts?: string[] }, basePath: string): Promise<CertFiles> {
  const keys = await crypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const names = (subject.hosts ?? []).map((host) => ({ type: /^[\d.]+$|:/.test(host) ? ('ip' as const) : ('dns' as const), value: host }));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=${subject.commonName}`,
    issuer: ca.cert.subject,
    ...validity(),
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : []),
      await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
    ],
  });
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
  const files = { certFile: `${basePath}-cert.pem`, keyFile: `${basePath}-key.pem` };
  writeFileSync(files.certFile, cert.toString('pem'));
  writeFileSync(files.keyFile, pem('PRIVATE KEY', pkcs8), { mode: 0o600 });
  return files;
}

/** Valid from a day ago (clocks differ) for a week: a test run never outlives it. */
function validity(): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  return { notBefore: new Date(now - DAY_MS), notAfter: new Date(now + 7 * DAY_MS) };
}

/** A positive random serial (the top bit clear, as DER integers are signed). */
function serialNumber(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f;
  return Buffer.from(bytes).toString('hex');
}

function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
