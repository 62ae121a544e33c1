/**
 * The HTTP listener of a process ([http] host/port): Prometheus metrics at /metrics, and whatever else
 * the parts running in this process mount (WebSocket, web client).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CONTENT_TYPE, type Registry } from '../metrics/registry.ts';

export type Route = (req: IncomingMessage, res: ServerResponse) => boolean;

export interface HttpListener {
  server: Server;
  port: number;
  /** Adds a handler; it returns true when it answered the request. */
  mount(route: Route): void;
  close(): Promise<void>;
}

export async function startHttp(host: string, port: number, registry: Registry): Promise<HttpListener> {
  const routes: Route[] = [];
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) {
      const body = registry.render();
      res.writeHead(200, { 'content-type': CONTENT_TYPE, 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    for (const route of routes) if (route(req, res)) return;
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('not found\n');
  });
  // Slow or idle HTTP clients must not pin sockets forever.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    mount: (route) => routes.push(route),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
