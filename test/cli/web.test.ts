/**
 * The web client's static-file route (src/cli/web.ts): content types, index at `/`, and nothing outside
 * web/ — traversal, encoded traversal, dot files, sub-directories, unknown extensions and bad escapes
 * all get 404 from the listener.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { type HttpListener, startHttp } from '../../src/cli/http.ts';
import { resolveWebPath, webRoute } from '../../src/cli/web.ts';
import { Registry } from '../../src/metrics/registry.ts';

describe('web client static files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-webroute-'));
  const root = join(dir, 'web');
  let http: HttpListener;
  const url = (path: string) => `http://127.0.0.1:${http.port}${path}`;

  before(async () => {
    mkdirSync(join(root, 'sub'), { recursive: true });
    writeFileSync(join(root, 'index.html'), '<!doctype html><title>t</title>');
    writeFileSync(join(root, 'app.js'), 'export {};');
    writeFileSync(join(root, 'style.css'), 'body{}');
    writeFileSync(join(root, '.secret.js'), 'secret');
    writeFileSync(join(root, 'notes.txt'), 'not served');
    writeFileSync(join(root, 'sub', 'x.js'), 'nested');
    writeFileSync(join(dir, 'outside.js'), 'outside');
    http = await startHttp('127.0.0.1', 0, new Registry());
    http.mount(webRoute(root));
  });

  after(async () => {
    await http.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves index.html at / and each file with its content type', async () => {
    for (const [path, type, body] of [
      ['/', 'text/html; charset=utf-8', '<!doctype html><title>t</title>'],
      ['/index.html', 'text/html; charset=utf-8', '<!doctype html><title>t</title>'],
      ['/app.js?v=1', 'text/javascript; charset=utf-8', 'export {};'],
      ['/style.css', 'text/css; charset=utf-8', 'body{}'],
    ] as const) {
      const r = await fetch(url(path));
      assert.equal(r.status, 200, path);
      assert.equal(r.headers.get('content-type'), type, path);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(await r.text(), body, path);
    }
    const head = await fetch(url('/app.js'), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(Buffer.byteLength('export {};')));
  });

  it('answers 404 for anything outside web/ or not a plain file there', async () => {
    for (const path of [
      '/../outside.js',
      '/%2e%2e/outside.js',
      '/..%2foutside.js',
      '/..%5coutside.js',
      '/%2e%2e%2foutside.js',
      '/.secret.js',
      '/notes.txt',
      '/sub/x.js',
      '/sub%2fx.js',
      '/missing.js',
      '/%',
      '/%00.js',
      '/app.js%00.html',
    ]) {
      const r = await fetch(url(path));
      assert.equal(r.status, 404, path);
      await r.arrayBuffer();
    }
    const post = await fetch(url('/app.js'), { method: 'POST', body: 'x' });
    assert.equal(post.status, 404);
  });

  it('never maps any request path outside the root (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (s) => {
        for (const path of [s, `/${s}`, `/${encodeURIComponent(s)}`]) {
          const file = resolveWebPath(root, path);
          if (file === undefined) continue;
          const rel = relative(root, file);
          assert.ok(!rel.startsWith('..') && !rel.includes('/') && !rel.startsWith('.'), `${path} → ${file}`);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
