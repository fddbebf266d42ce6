/**
 * OpenSSL's error text, made one line. Node and grpc-js pass on OpenSSL's own form,
 * `80FC...:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:
 * ../deps/openssl/...:1601:SSL alert number 116` and a line break, which would split a log
 * line and bury the reason; the reason (`tlsv13 alert certificate required`) is kept.
 */
const OPENSSL_ERROR = /[0-9A-F]+:error:[0-9A-F]+:SSL routines:[^:]*:([^:\n]+):[^\n]*\n?/g;

/** `text` with each OpenSSL error in it replaced by its reason. */
export function withOpensslReasons(text: string): string {
  return text.replace(OPENSSL_ERROR, '$1').trim();
}
