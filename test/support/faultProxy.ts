/**
 * A TCP proxy for fault tests, placed between the app and nginx. It forwards every byte
 * both ways, except that for the first `cutResponses` connections it resets the client's
 * connection the moment the upstream starts answering: the request was sent and
 * processed (ClickHouse stored the batch), but the client never learns it. That is the
 * ambiguous failure an idempotent retry must survive.
 */
import { createServer, Socket, type Server } from 'node:net';

export interface FaultProxy {
  readonly port: number;
  /** How many responses were cut so far. */
  cuts(): number;
  close(): Promise<void>;
}

export async function startFaultProxy(options: { upstreamPort: number; cutResponses: number }): Promise<FaultProxy> {
  let cuts = 0;
  let chosen = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = new Socket();
    sockets.add(client);
    sockets.add(upstream);
    // Decided per connection, when it opens: the first `cutResponses` connections are cut.
    const cut = chosen++ < options.cutResponses;
    upstream.connect(options.upstreamPort, '127.0.0.1');
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => {
      if (cut) {
        if (!client.destroyed) {
          cuts++;
          client.resetAndDestroy();
        }
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fault proxy has no port');
  return {
    port: address.port,
    cuts: () => cuts,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
