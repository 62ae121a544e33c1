/**
 * The HTTP listener of a process ([http] host/port): Prometheus metrics at /metrics, and whatever else
 * the parts running in this process mount (WebSocket, web client).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { CONTENT_TYPE, type Registry } from '../metrics/registry.ts';

export type Route = (req: IncomingMessage, res: ServerResponse) => boolean;
/** A WebSocket (or other) upgrade handler; returns true when it took the request. */
export type UpgradeRoute = (req: IncomingMessage, socket: Socket, head: Buffer) => boolean;

export interface HttpListener {
  server: Server;
  port: number;
  /** Adds a handler; it returns true when it answered the request. */
  mount(route: Route): void;
  mountUpgrade(route: UpgradeRoute): void;
  close(): Promise<void>;
}

export async function startHttp(host: string, port: number, registry: Registry): Promise<HttpListener> {
  const routes: Route[] = [];
  const upgrades: UpgradeRoute[] = [];
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
  server.on('upgrade', (req, socket: Socket, head: Buffer) => {
    for (const route of upgrades) if (route(req, socket, head)) return;
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
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
    mountUpgrade: (route) => upgrades.push(route),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
