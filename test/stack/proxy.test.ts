// The real nginx ch-proxy from etc/ch-proxy/nginx.conf, at a test rate (60r/m = one
// request per second) so that its limits show in seconds: early request → 503, body over
// the limit → 413, and an access log without client addresses.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { freePort, startClickHouse, startProxy } from '../../stack/index.ts';
import type { ServiceHandle } from '../../stack/index.ts';

describe('ch-proxy (nginx)', () => {
  let dir: string;
  let ch: ServiceHandle & { url: string };
  let proxy: ServiceHandle & { url: string; accessLog: string };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'stack-proxy-'));
    const chPort = await freePort();
    ch = await startClickHouse({ dir: join(dir, 'clickhouse'), port: chPort });
    proxy = await startProxy({
      dir: join(dir, 'proxy'), port: await freePort(), upstreamPort: chPort,
      rate: '60r/m', maxBody: '16k',
    });
  }, 60_000);

  afterAll(async () => {
    await Promise.all([proxy?.stop(), ch?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('lets one request through per period and refuses an early one with 503', async () => {
    const first = await fetch(`${proxy.url}/?query=SELECT+1`);
    expect(first.status).toBe(200);
    expect(await first.text()).toBe('1\n');
    const second = await fetch(`${proxy.url}/?query=SELECT+2`);
    expect(second.status).toBe(503);
    await second.text();
  });

  it('refuses a body over client_max_body_size with 413', async () => {
    const res = await fetch(`${proxy.url}/?query=INSERT+INTO+x+FORMAT+RowBinary`, {
      method: 'POST',
      body: Buffer.alloc(20 * 1024, 1),
    });
    expect(res.status).toBe(413);
    await res.text();
  });

  it('lets a request through again after the period', async () => {
    await new Promise((r) => setTimeout(r, 1_100));
    const res = await fetch(`${proxy.url}/?query=SELECT+3`);
    expect(res.status).toBe(200);
    await res.text();
  });

  it('logs requests without the client address', async () => {
    // nginx writes the line when the response is done; give it a moment.
    await new Promise((r) => setTimeout(r, 200));
    const log = readFileSync(proxy.accessLog, 'utf8');
    const lines = log.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(4);
    expect(log).not.toContain('127.0.0.1');
    expect(lines.map((l) => l.split(' ')[2])).toEqual(['200', '503', '413', '200']);
    expect(lines[0]).toMatch(/^\d+\.\d{3} \d+\.\d{3} 200 GET \d+ \d+ "\/\?query=SELECT\+1"$/);
  });
});
