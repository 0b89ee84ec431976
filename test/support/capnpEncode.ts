/**
 * Test vectors from the official Cap'n Proto implementation: `capnp encode` turns the
 * text form of an `HttpLogRecord` into a message in standard framing. Using it (rather
 * than our own capnp-ts builder) is what makes a decoding test independent.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCHEMA = fileURLToPath(new URL('../../schema/http_log.capnp', import.meta.url));

export function capnpEncode(text: string): Buffer {
  return execFileSync('capnp', ['encode', SCHEMA, 'HttpLogRecord'], { input: text });
}

/** The text form of a record, with fields given in any subset. */
export function capnpText(fields: Readonly<Record<string, string | number | bigint>>): string {
  const parts = Object.entries(fields).map(([name, value]) => `${name} = ${typeof value === 'string' ? JSON.stringify(value) : value.toString()}`);
  return `(${parts.join(', ')})`;
}
