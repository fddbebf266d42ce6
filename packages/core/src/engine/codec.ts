/**
 * How values cross the journal and the wire: JSON, UTF-8. `undefined` is written as an
 * empty payload and read back as `undefined`, so a step that returns nothing replays as such.
 */
import { DecodeError } from '../errors.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A value as JSON bytes. */
export function encodeJson(value: unknown): Uint8Array {
  if (value === undefined) return new Uint8Array();
  return encoder.encode(JSON.stringify(value));
}

/**
 * JSON bytes as a value.
 * @throws DecodeError when the bytes are not JSON, naming `what` they were.
 */
export function decodeJson<T = unknown>(bytes: Uint8Array, what = 'value'): T {
  if (bytes.length === 0) return undefined as T;
  const text = decoder.decode(bytes);
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new DecodeError(`${what} is not valid JSON: ${text.slice(0, 80)}`, { cause: err });
  }
}

/** Bytes as text, for logs and the inspect tool. */
export function bytesToText(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}
