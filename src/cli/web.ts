/**
 * The web client's files (web/ in the checkout) at `/` on the HTTP listener. Only regular files directly
 * under web/ with a known extension are served: no directory listing, no dot files, no `..`.
 */
import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import type { Route } from './http.ts';

export const WEB_ROOT = new URL('../../web/', import.meta.url).pathname;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** A file name we serve: letters, digits, `-`, `_` and one extension; nothing else (no `/`, no `..`). */
const SAFE_NAME = /^[A-Za-z0-9_-]+\.[a-z]+$/;

/** Maps a request path to a file under `root`, or undefined when it is not one we serve. */
export function resolveWebPath(root: string, urlPath: string): string | undefined {
  let path: string;
  try {
    path = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (path === '/') path = '/index.html';
  const name = path.slice(1);
  if (!SAFE_NAME.test(name)) return undefined;
  if (CONTENT_TYPES[extname(name)] === undefined) return undefined;
  return join(root, name);
}

/** A Route serving the files under `root` (default web/ of this checkout). */
export function webRoute(root = WEB_ROOT): Route {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const file = resolveWebPath(root, (req.url ?? '/').split('?')[0] ?? '/');
    if (file === undefined) return false;
    const head = req.method === 'HEAD';
    stat(file)
      .then(async (s) => {
        if (!s.isFile()) throw new Error('not a file');
        const body = await readFile(file);
        res.writeHead(200, {
          'content-type': CONTENT_TYPES[extname(file)]!,
          'content-length': body.length,
          'cache-control': 'no-cache',
          'x-content-type-options': 'nosniff',
        });
        res.end(head ? undefined : body);
      })
      .catch(() => {
        if (res.headersSent) {
          res.destroy();
          return;
        }
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('not found\n');
      });
    return true;
  };
}
