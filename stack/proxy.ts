// Runs the real ch-proxy (Debian nginx) from the template etc/ch-proxy/nginx.conf, for
// machines without Docker. Rate and body limit are parameters so that tests can run the
// proxy at, say, 60r/m and finish in seconds. With `tls`, the same config listens with
// TLS (an https:// endpoint with the stack's private CA): only the listen line differs, so
// the limits a secured test sees are the production ones.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  REPO_ROOT, assertNotRunning, listensOn, makeHandle, portAccepts, spawnDetached, waitReady,
  writeServiceFiles,
} from './service.ts';
import type { ServiceHandle } from './service.ts';

export const PROXY_NAME = 'proxy';
export const PROXY_MARKER = 'nginx';
export const NGINX_TEMPLATE = join(REPO_ROOT, 'etc', 'ch-proxy', 'nginx.conf');
const STARTUP_TIMEOUT_MS = 15_000;

export interface StartProxyOptions {
  dir: string;
  port: number;
  upstreamPort: number;
  /** limit_req rate, default `1r/m`. */
  rate?: string;
  /** client_max_body_size, default `1m`. */
  maxBody?: string;
  /** Listen with TLS, with this certificate and key (PEM). */
  tls?: { certFile: string; keyFile: string };
}

const LISTEN_LINE = /^(\s*)listen (\S+);$/m;

/** The rendered config with its one `listen` line turned into a TLS listener. */
export function withTls(conf: string, tls: { certFile: string; keyFile: string }): string {
  if (!LISTEN_LINE.test(conf)) throw new Error('nginx template: no single `listen ADDRESS:PORT;` line to put TLS on');
  return conf.replace(LISTEN_LINE, (_, indent: string, address: string) => [
    `${indent}listen ${address} ssl;`,
    `${indent}ssl_certificate ${tls.certFile};`,
    `${indent}ssl_certificate_key ${tls.keyFile};`,
    `${indent}ssl_protocols TLSv1.2 TLSv1.3;`,
  ].join('\n'));
}

/** The nginx binary: $NGINX_BIN, else Debian's /usr/sbin/nginx, else `nginx` on PATH. */
export function nginxBin(): string {
  if (process.env.NGINX_BIN) return process.env.NGINX_BIN;
  return existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';
}

/** Fill `${NAME}` placeholders; an unknown one is an error, not an empty string. */
export function renderTemplate(template: string, vars: Record<string, string>): string {
  return template.replace(/\$\{([A-Z0-9_]+)\}/g, (_, name: string) => {
    const value = vars[name];
    if (value === undefined) throw new Error(`nginx template: no value for \${${name}}`);
    return value;
  });
}

/** Render the config into `dir`, check it with `nginx -t`, start nginx, wait for the port. */
export async function startProxy(
  opts: StartProxyOptions,
): Promise<ServiceHandle & { url: string; accessLog: string }> {
  const dir = resolve(opts.dir);
  assertNotRunning(dir, PROXY_NAME, PROXY_MARKER);
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'nginx.conf');
  const logFile = join(dir, 'proxy.log'); // nginx's stderr; its error_log is error.log
  const accessLog = join(dir, 'access.log');
  const errorLog = join(dir, 'error.log');

  const rendered = renderTemplate(readFileSync(NGINX_TEMPLATE, 'utf8'), {
    PROXY_RATE: opts.rate ?? '1r/m',
    PROXY_MAX_BODY: opts.maxBody ?? '1m',
    PROXY_LISTEN: '127.0.0.1',
    PROXY_PORT: String(opts.port),
    UPSTREAM: `127.0.0.1:${opts.upstreamPort}`,
    PREFIX: dir,
  });
  writeFileSync(conf, opts.tls ? withTls(rendered, opts.tls) : rendered);

  // -e: without it nginx first tries /var/log/nginx/error.log, before reading the config.
  const args = ['-p', dir, '-c', conf, '-e', errorLog, '-g', 'daemon off;'];
  const test = spawnSync(nginxBin(), ['-t', '-q', ...args], { encoding: 'utf8', timeout: 10_000 });
  if (test.error || test.status !== 0) {
    const why = test.error ? test.error.message : `${test.stderr}${test.stdout}`.trim();
    throw new Error(`nginx -t failed for ${conf}: ${why}`);
  }

  const pid = spawnDetached(nginxBin(), args, { logFile, cwd: dir });
  const url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${opts.port}`;
  writeServiceFiles(dir, {
    name: PROXY_NAME, pid, address: url, logFile, startedAt: new Date().toISOString(),
  });
  const handle = makeHandle(PROXY_NAME, pid, logFile, dir);
  try {
    await waitReady({
      name: PROXY_NAME, pid, logFile: `${logFile} / ${errorLog}`, timeoutMs: STARTUP_TIMEOUT_MS,
      intervalMs: 100,
      // A TCP connect, not an HTTP request: a request would use up the rate-limit slot.
      // nginx must hold the port itself: while it retries a taken port (EADDRINUSE, for
      // ~2.5 s before it exits), whatever holds it would answer the connect.
      ready: async () => listensOn(pid, [opts.port]) && portAccepts(opts.port),
    });
  } catch (err) {
    await handle.stop();
    throw err;
  }
  return { ...handle, url, accessLog };
}
