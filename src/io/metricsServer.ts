/**
 * Wire protocol: HTTP/1.1 on METRICS_HOST:METRICS_PORT (default 127.0.0.1:9464).
 *
 *   GET /metrics  Prometheus text exposition (prom-client registry)
 *   GET /healthz  200 "ok" while the process serves requests (liveness)
 *   GET /readyz   200 when the consumer has joined its group and the spool is writable,
 *                 503 with the reason otherwise (readiness)
 *
 * Nothing here reveals a record: metrics carry counts, bytes and states only.
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { ConfigError } from '../errors.ts';

export interface Readiness {
  /** Undefined when ready, else why not. */
  (): Promise<string | undefined>;
}

export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startMetricsServer(options: { host: string; port: number; registry: Registry; readiness: Readiness }): Promise<MetricsServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const reply = (status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
      response.writeHead(status, { 'content-type': type });
      response.end(body);
    };
    if (request.method !== 'GET') return reply(405, 'GET only\n');
    if (path === '/healthz') return reply(200, 'ok\n');
    if (path === '/readyz') {
      void options.readiness().then(
        (reason) => (reason === undefined ? reply(200, 'ready\n') : reply(503, `not ready: ${reason}\n`)),
        (error: unknown) => reply(503, `not ready: ${(error as Error).message}\n`),
      );
      return;
    }
    if (path === '/metrics') {
      void options.registry.metrics().then(
        (text) => reply(200, text, options.registry.contentType),
        (error: unknown) => reply(500, `${(error as Error).message}\n`),
      );
      return;
    }
    reply(404, 'not found: try /metrics, /healthz or /readyz\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      // A port in use or not ours to bind is a deployment mistake: say so as configuration.
      if (error.code === 'EADDRINUSE' || error.code === 'EACCES' || error.code === 'EADDRNOTAVAIL') {
        reject(new ConfigError('METRICS_PORT', `METRICS_PORT ${options.port}: cannot listen on ${options.host}:${options.port} (${error.code}); choose a free port, or 0 to turn the metrics endpoint off`));
      } else reject(error);
    });
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : options.port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
