/**
 * With `allow_plain_loopback = false` (the default of `switchboard xmpp`; `switchboard up` turns it on)
 * and a plain-HTTP listener, the text server offers no SASL mechanism on the WebSocket, so nobody can log
 * in through the page: it must say why instead of hanging or failing vaguely (docs/web-client.md, Limits).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { type BrowserContext, chromium } from 'playwright-core';
import { freeTcpPort, freeUdpTcpPort, Proc } from '../helpers/net.ts';
import { requirePeer } from '../helpers/peers.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'sb-web-default-'));
let up: Proc | undefined;
let browser: BrowserContext | undefined;

after(async () => {
  await browser?.close();
  await up?.stop();
  rmSync(dir, { recursive: true, force: true });
});

it('the page explains that the server offers no login on this connection', async () => {
  const executablePath = requirePeer('chromium');
  const http = await freeTcpPort();
  const config = join(dir, 'config.toml');
  writeFileSync(
    config,
    `log_level = "warn"\n[xmpp]\nallow_plain_loopback = false\nc2s_port = ${await freeTcpPort()}\ncomponent_port = ${await freeTcpPort()}\n[http]\nport = ${http}\n[pbx]\nsip_port = ${await freeUdpTcpPort()}\ncsta_port = ${await freeTcpPort()}\n`,
  );
  up = new Proc(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'up', '--config', config, '--data', join(dir, 'data')],
    { cwd: ROOT },
  );
  await up.waitForOutput(/Switchboard is up/, 30_000);
  const [, password] = await up.waitForOutput(/alice@localhost {2}password (\S+)/, 5000);
  browser = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 30_000,
  });
  const page = browser.pages()[0] ?? (await browser.newPage());
  await page.goto(`http://127.0.0.1:${http}/`);
  await page.fill('#jid', 'alice@localhost');
  await page.fill('#password', password!);
  await page.click('#login-button');
  await page
    .locator('#login-error', { hasText: 'The server offers no way to log in on this connection' })
    .waitFor({ timeout: 15_000 });
  assert.equal(await page.isVisible('#app-view'), false);
  assert.equal(await page.isEnabled('#login-button'), true, 'the form can be used again');
});
