/**
 * Reading the files a setting names (a `.creds` file, a CA certificate): a file that
 * cannot be read, or does not hold what it should, is one line naming the setting and
 * the file, never a stack.
 */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, errorMessage } from './errors.js';

/**
 * A file's text.
 * @param setting what named the file (`NATS_CREDS`, `services.json: HelloService.tls.ca`), for the message.
 * @throws InvalidArgumentError naming the setting and the file, and why it cannot be read.
 */
export function readSettingFile(setting: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(setting, `cannot read ${path}: ${fileProblem(err)}`);
  }
}

/** What a PEM file must hold: its BEGIN line names one of these. */
export type PemKind = 'CERTIFICATE' | 'PRIVATE KEY';

/**
 * A PEM file's text, checked to hold a `kind` block (`PRIVATE KEY` also matches
 * `EC PRIVATE KEY` and `RSA PRIVATE KEY`).
 * @throws InvalidArgumentError naming the setting and the file.
 */
export function readPemFile(setting: string, path: string, kind: PemKind): string {
  const text = readSettingFile(setting, path);
  if (!new RegExp(`-----BEGIN [A-Z ]*${kind}-----`).test(text)) {
    throw new InvalidArgumentError(setting, `${path} holds no PEM ${kind}`);
  }
  return text;
}

function fileProblem(err: unknown): string {
  const code = typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return errorMessage(err);
}
