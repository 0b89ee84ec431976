/**
 * `anonymizer inspect` against vectors made by the official `capnp encode`, run as the
 * real command so its output, exit code and stderr are what a user gets.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { capnpEncode, capnpText } from '../support/capnpEncode.ts';

const BIN = fileURLToPath(new URL('../../bin/anonymizer.js', import.meta.url));

function runInspect(input: Buffer, viaFile = false): { lines: Array<Record<string, unknown>>; status: number | null; stderr: string } {
  let args = ['inspect'];
  let stdin: Buffer | undefined = input;
  if (viaFile) {
    const file = join(mkdtempSync(join(tmpdir(), 'inspect-')), 'records.bin');
    writeFileSync(file, input);
    args = ['inspect', file];
    stdin = undefined;
  }
  const result = spawnSync(process.execPath, [BIN, ...args], { input: stdin ?? Buffer.alloc(0), encoding: 'utf8' });
  const lines = result.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
  return { lines, status: result.status, stderr: result.stderr };
}

const base = {
  timestampEpochMilli: 1_700_000_000_123n,
  resourceId: 42n,
  bytesSent: 1234n,
  requestTimeMilli: 56n,
  responseStatus: 200,
  cacheStatus: 'HIT',
  method: 'GET',
  remoteAddr: '1.2.3.4',
  url: '/index.html',
};

const expectedBase = {
  timestamp: '2023-11-14 22:13:20',
  resource_id: '42',
  bytes_sent: '1234',
  request_time_milli: '56',
  response_status: 200,
  cache_status: 'HIT',
  method: 'GET',
  remote_addr: '1.2.3.X',
  url: '/index.html',
};

describe('anonymizer inspect on capnp-encoded vectors', () => {
  const cases: Array<[string, Record<string, string | number | bigint>, Record<string, unknown>]> = [
    ['a typical IPv4 record', base, expectedBase],
    [
      'UInt64 maxima, exact to the last digit',
      { ...base, resourceId: 18446744073709551615n, bytesSent: 18446744073709551614n, requestTimeMilli: 9007199254740993n },
      { ...expectedBase, resource_id: '18446744073709551615', bytes_sent: '18446744073709551614', request_time_milli: '9007199254740993' },
    ],
    ['UInt16 maximum status', { ...base, responseStatus: 65535 }, { ...expectedBase, response_status: 65535 }],
    ['IPv4 with a port', { ...base, remoteAddr: '10.20.30.40:8080' }, { ...expectedBase, remote_addr: '10.20.30.X' }],
    ['IPv6, mixed case', { ...base, remoteAddr: '2001:DB8:85a3::8A2E:370:7334' }, { ...expectedBase, remote_addr: '2001:db8:85a3::X' }],
    ['IPv6 in brackets with a port', { ...base, remoteAddr: '[2001:db8:1:2::1]:443' }, { ...expectedBase, remote_addr: '2001:db8:1::X' }],
    ['IPv4-mapped IPv6', { ...base, remoteAddr: '::ffff:1.2.3.4' }, { ...expectedBase, remote_addr: '1.2.3.X' }],
    ['an address that is not one', { ...base, remoteAddr: 'not-an-ip' }, { ...expectedBase, remote_addr: 'X' }],
    ['three octets only', { ...base, remoteAddr: '1.2.3' }, { ...expectedBase, remote_addr: 'X' }],
    ['an octet over 255', { ...base, remoteAddr: '1.2.3.256' }, { ...expectedBase, remote_addr: 'X' }],
    ['an empty address', { ...base, remoteAddr: '' }, { ...expectedBase, remote_addr: 'X' }],
    [
      'unicode in text fields',
      { ...base, url: '/straße/☃/😀?q=ü', cacheStatus: 'MISS', method: 'PÖST' },
      { ...expectedBase, url: '/straße/☃/😀?q=ü', cache_status: 'MISS', method: 'PÖST' },
    ],
    ['the epoch', { ...base, timestampEpochMilli: 0n }, { ...expectedBase, timestamp: '1970-01-01 00:00:00' }],
    ['milliseconds are floored, not rounded', { ...base, timestampEpochMilli: 1_700_000_000_999n }, { ...expectedBase, timestamp: '2023-11-14 22:13:20' }],
    ['the last second DateTime holds', { ...base, timestampEpochMilli: 4_294_967_295_999n }, { ...expectedBase, timestamp: '2106-02-07 06:28:15' }],
  ];

  it.each(cases)('%s', (_name, fields, expected) => {
    const { lines, status } = runInspect(capnpEncode(capnpText(fields)));
    expect(status).toBe(0);
    expect(lines).toEqual([expected]);
  });

  it('the empty struct decodes to zeros and empty strings', () => {
    const { lines, status } = runInspect(capnpEncode('()'));
    expect(status).toBe(0);
    expect(lines).toEqual([
      { timestamp: '1970-01-01 00:00:00', resource_id: '0', bytes_sent: '0', request_time_milli: '0', response_status: 0, cache_status: '', method: '', remote_addr: 'X', url: '' },
    ]);
  });

  it('a timestamp past DateTime prints an error object, and the stream goes on', () => {
    const input = Buffer.concat([
      capnpEncode(capnpText({ ...base, timestampEpochMilli: 4_294_967_296_000n })),
      capnpEncode(capnpText({ ...base, timestampEpochMilli: 18446744073709551615n })),
      capnpEncode(capnpText(base)),
    ]);
    const { lines, status } = runInspect(input, true);
    expect(status).toBe(0);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({ code: 'ANON_TIMESTAMP_RANGE', message: 0 });
    expect(lines[0]!.error).toMatch(/2106-02-07/);
    expect(lines[1]).toMatchObject({ code: 'ANON_TIMESTAMP_RANGE', message: 1 });
    expect(lines[2]).toEqual(expectedBase);
  });

  it('reads many messages back to back, from a file and from stdin alike', () => {
    const records = Array.from({ length: 50 }, (_, i) => ({ ...base, resourceId: BigInt(i), remoteAddr: `192.168.${i}.${200 + (i % 50)}` }));
    const input = Buffer.concat(records.map((record) => capnpEncode(capnpText(record))));
    for (const viaFile of [false, true]) {
      const { lines, status } = runInspect(input, viaFile);
      expect(status).toBe(0);
      expect(lines.map((line) => [line.resource_id, line.remote_addr])).toEqual(records.map((_, i) => [String(i), `192.168.${i}.X`]));
    }
  });

  it('a message with a corrupt pointer prints an error object; the next message still decodes', () => {
    const corrupt = Buffer.from(capnpEncode(capnpText(base)));
    // The url pointer (the 4th pointer of the root struct) now points far outside the segment.
    corrupt.writeUInt32LE(0x7ffffff1, 8 + 8 + 40 + 3 * 8);
    const { lines, status } = runInspect(Buffer.concat([corrupt, capnpEncode(capnpText(base))]));
    expect(status).toBe(0);
    expect(lines[0]).toMatchObject({ code: 'ANON_DECODE', message: 0 });
    expect(lines[1]).toEqual(expectedBase);
  });

  it('a stream cut inside a message ends with an error line and exit code 1, without a stack trace', () => {
    const whole = capnpEncode(capnpText(base));
    const input = Buffer.concat([whole, whole.subarray(0, whole.length - 5)]);
    const { lines, status, stderr } = runInspect(input);
    expect(status).toBe(1);
    expect(lines[0]).toEqual(expectedBase);
    expect(lines[1]).toMatchObject({ code: 'ANON_FRAMING', message: 1 });
    expect(stderr).not.toMatch(/\bat .+:\d+:\d+/);
  });

  it('never prints the raw address', () => {
    const { lines } = runInspect(capnpEncode(capnpText({ ...base, remoteAddr: '203.0.113.77' })));
    expect(JSON.stringify(lines)).not.toContain('203.0.113.77');
    expect(JSON.stringify(lines)).not.toContain('.77');
  });
});
