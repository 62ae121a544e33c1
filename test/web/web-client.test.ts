/**
 * The web client in a real browser (Debian's Chromium driven by playwright-core) against `switchboard up`
 * with SIP test phones: alice logs in through the page, sees her roster and her phone contacts' state,
 * clicks "Call" on bob → her phone rings first (answered), then bob's; she hangs up from the page; a call
 * to her phone pops up in the page and, left unanswered, lands in the call history as missed.
 * Screenshots are kept in test-artifacts/web/.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { freeTcpPort, freeUdpTcpPort, Proc } from '../helpers/net.ts';
import { requirePeer } from '../helpers/peers.ts';
import { TestPhone } from '../helpers/sip-phone.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const ARTIFACTS = join(ROOT, 'test-artifacts/web');

const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

describe('web client in Chromium against switchboard up', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-web-'));
  let up: Proc;
  let httpPort: number;
  let sipPort: number;
  const users: Record<string, { password: string; sip: string }> = {};
  const phones: TestPhone[] = [];
  let browser: BrowserContext | undefined;
  let page: Page;

  before(async () => {
    const executablePath = requirePeer('chromium');
    mkdirSync(ARTIFACTS, { recursive: true });
    httpPort = await freeTcpPort();
    sipPort = await freeUdpTcpPort();
    const config = join(dir, 'config.toml');
    writeFileSync(
      config,
      `log_level = "warn"\n[xmpp]\nc2s_port = ${await freeTcpPort()}\ncomponent_port = ${await freeTcpPort()}\nallow_plain_loopback = true\n[http]\nport = ${httpPort}\n[pbx]\nsip_port = ${sipPort}\ncsta_port = ${await freeTcpPort()}\n`,
    );
    up = new Proc(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'up', '--config', config, '--data', join(dir, 'data')],
      { cwd: ROOT },
    );
    await up.waitForOutput(/Switchboard is up/, 30_000);
    await up.waitForOutput(new RegExp(`web client +http://127\\.0\\.0\\.1:${httpPort}/`), 5000);
    for (const name of ['alice', 'bob', 'carol']) {
      const [, password, sip] = await up.waitForOutput(
        new RegExp(`${name}@localhost {2}password (\\S+) {2}phone \\d+, SIP password (\\S+)`),
        5000,
      );
      users[name] = { password: password!, sip: sip! };
    }
    // A fresh profile in the test's temp dir; never a downloaded browser.
    browser = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
      executablePath,
      args: CHROMIUM_FLAGS,
      headless: true,
      timeout: 30_000,
      viewport: { width: 1280, height: 760 },
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on('pageerror', (e) => console.log(`# page error: ${e.message}`));
  });

  after(async () => {
    await browser?.close();
    for (const p of phones) await p.stop().catch(() => {});
    await up?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function phone(extension: string, user: string): Promise<TestPhone> {
    const p = new TestPhone(extension, users[user]!.sip, {
      host: '127.0.0.1',
      port: sipPort,
      domain: 'localhost',
    });
    await p.start();
    phones.push(p);
    assert.equal((await p.register(300)).status, 200, `REGISTER ${extension}`);
    return p;
  }

  const contact = (jid: string) => page.locator(`#roster li.contact[data-jid="${jid}"]`);

  it('serves the page and refuses paths outside web/', async () => {
    const index = await fetch(`http://127.0.0.1:${httpPort}/`);
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type') ?? '', /^text\/html/);
    const js = await fetch(`http://127.0.0.1:${httpPort}/xmpp.js`);
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
    for (const bad of ['/../package.json', '/%2e%2e/package.json', '/..%2fpackage.json', '/.gitignore']) {
      assert.equal((await fetch(`http://127.0.0.1:${httpPort}${bad}`)).status, 404, bad);
    }
  });

  it('alice logs in, sees her roster and phone contacts, clicks Call on bob: her phone, then bob’s', async () => {
    const alicePhone = await phone('1001', 'alice');
    const bobPhone = await phone('1002', 'bob');
    alicePhone.mode = 'answer';
    bobPhone.mode = 'ring';

    await page.goto(`http://127.0.0.1:${httpPort}/`);
    await page.screenshot({ path: join(ARTIFACTS, '0-login.png') });
    assert.equal(await page.isVisible('#logout'), false, 'no Log out button before logging in');
    assert.equal(await page.isVisible('#app-view'), false);
    await page.fill('#jid', 'alice@localhost');
    await page.fill('#password', 'wrong');
    await page.click('#login-button');
    await page.locator('#login-error', { hasText: 'Wrong JID or password' }).waitFor({ timeout: 10_000 });

    await page.fill('#password', users.alice!.password);
    await page.click('#login-button');
    await page.locator('#my-jid', { hasText: 'alice@localhost/' }).waitFor({ timeout: 10_000 });
    assert.equal(await page.getAttribute('body', 'data-mechanism'), 'SCRAM-SHA-256');
    // The gateway answers "status": the page knows her phone and adds it as a contact.
    await page.locator('#my-phone', { hasText: '(1001)' }).waitFor({ timeout: 10_000 });
    await contact('1001@cti.localhost').locator('.status', { hasText: 'Idle' }).waitFor({ timeout: 10_000 });

    for (const jid of ['bob@localhost', '1002@cti.localhost']) {
      await page.fill('#add-jid', jid);
      await page.click('#add-contact button');
    }
    await contact('bob@localhost').waitFor({ timeout: 10_000 });
    // bob's phone contact shows its state (registered and idle).
    await contact('1002@cti.localhost').locator('.status', { hasText: 'Idle' }).waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(ARTIFACTS, '1-roster.png') });

    const aliceRings = new Promise((resolve) => alicePhone.once('incoming', resolve));
    const bobRings = new Promise((resolve) => bobPhone.once('incoming', resolve));
    await contact('bob@localhost').locator('.call-button').click();
    await aliceRings;
    await bobRings;
    await page.locator('#phone-log', { hasText: 'Calling bob (1002) from your phone 1001' }).waitFor();
    await page.locator('#history li[data-kind="outgoing"]', { hasText: 'bob (1002)' }).waitFor();
    // bob's phone contact is ringing; alice's own phone is in the call.
    await contact('1002@cti.localhost')
      .locator('.status', { hasText: 'Ringing' })
      .waitFor({ timeout: 10_000 });
    bobPhone.answer();
    await page.locator('#call-state', { hasText: 'On the phone' }).waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(ARTIFACTS, '2-in-call.png') });

    await page.click('#hold');
    await page.locator('#phone-log li', { hasText: 'Your call is on hold.' }).waitFor({ timeout: 10_000 });
    await page.locator('#call-state', { hasText: 'On hold' }).waitFor({ timeout: 10_000 });
    await page.click('#retrieve');
    await page.locator('#phone-log li', { hasText: 'Your call is back.' }).waitFor({ timeout: 10_000 });
    await page.locator('#call-state', { hasText: 'On the phone' }).waitFor({ timeout: 10_000 });

    const byes = Promise.all([
      new Promise((resolve) => alicePhone.once('bye', resolve)),
      new Promise((resolve) => bobPhone.once('bye', resolve)),
    ]);
    await page.click('#hangup');
    await byes;
    await page.locator('#call-state', { hasText: 'No call' }).waitFor({ timeout: 10_000 });
  });

  it('a call to alice’s phone pops up in the page; unanswered it is a missed call in the history', async () => {
    const alicePhone = phones[0]!;
    alicePhone.mode = 'ring';
    const carolPhone = await phone('1003', 'carol');
    const rings = new Promise((resolve) => alicePhone.once('incoming', resolve));
    const call = carolPhone.call('1001');
    await rings;
    const popup = page.locator('#incoming');
    await popup.locator('#incoming-caller', { hasText: '1003 (carol)' }).waitFor({ timeout: 10_000 });
    assert.match((await popup.textContent()) ?? '', /carol@localhost/);
    await page.locator('#call-state', { hasText: 'Ringing' }).waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(ARTIFACTS, '3-incoming.png') });

    call.cancel();
    const final = await call.done;
    assert.equal(final.status, 487);
    await page
      .locator('#history li[data-kind="missed"]', { hasText: '1003 (carol)' })
      .waitFor({ timeout: 10_000 });
    await popup.waitFor({ state: 'hidden', timeout: 10_000 });
    await page.screenshot({ path: join(ARTIFACTS, '4-missed.png') });

    // Another call; this time alice declines it in the pop-up: the caller gets a final error response.
    const ringsAgain = new Promise((resolve) => alicePhone.once('incoming', resolve));
    const second = carolPhone.call('1001');
    await ringsAgain;
    await page.locator('#call-state', { hasText: 'Ringing' }).waitFor({ timeout: 10_000 });
    await popup.locator('#incoming-decline').click();
    const declined = await second.done;
    assert.ok(declined.status >= 400, `carol's call ends with ${declined.status}`);
    await page.locator('#phone-log li', { hasText: 'Hung up.' }).nth(1).waitFor({ timeout: 10_000 });
    await page.locator('#call-state', { hasText: 'No call' }).waitFor({ timeout: 10_000 });
  });
  it('bob logs in in a second tab: subscription approval, presence and one-to-one chat both ways', async () => {
    const bobPage = await browser!.newPage();
    bobPage.on('pageerror', (e) => console.log(`# bob's page error: ${e.message}`));
    await bobPage.goto(`http://127.0.0.1:${httpPort}/`);
    await bobPage.fill('#jid', 'bob@localhost');
    await bobPage.fill('#password', users.bob!.password);
    await bobPage.click('#login-button');
    // alice asked for bob's presence while he was offline: the request waits for him.
    const request = bobPage.locator('#requests li[data-jid="alice@localhost"]');
    await request.waitFor({ timeout: 10_000 });
    // The call alice made to him earlier reached him as an offline message: history, not a pop-up.
    await bobPage.locator('#history li[data-kind="incoming"]', { hasText: '1001 (alice)' }).waitFor();
    assert.equal(await bobPage.locator('#incoming').isVisible(), false);
    await request.locator('button', { hasText: 'Allow' }).click();
    // Allowing also adds alice and asks for her presence in return; she allows it in her page.
    const back = page.locator('#requests li[data-jid="bob@localhost"]');
    await back.waitFor({ timeout: 10_000 });
    await back.locator('button', { hasText: 'Allow' }).click();
    await page
      .locator('#roster li.contact[data-jid="bob@localhost"][data-show="available"]')
      .waitFor({ timeout: 10_000 });
    await bobPage
      .locator('#roster li.contact[data-jid="alice@localhost"][data-show="available"]')
      .waitFor({ timeout: 10_000 });

    await contact('bob@localhost').locator('.who').click();
    await page.fill('#chat-input', 'Hi bob, <b>not bold</b> & fine?');
    await page.click('#chat-send');
    const fromAlice = bobPage.locator('#roster li.contact[data-jid="alice@localhost"]');
    await fromAlice.locator('.unread', { hasText: '1' }).waitFor({ timeout: 10_000 });
    await fromAlice.locator('.who').click();
    await bobPage.locator('#messages li', { hasText: 'Hi bob, <b>not bold</b> & fine?' }).waitFor();
    await bobPage.fill('#chat-input', 'Hi alice');
    await bobPage.click('#chat-send');
    await page.locator('#messages li:not(.mine)', { hasText: 'Hi alice' }).waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(ARTIFACTS, '5-chat-alice.png') });
    await bobPage.screenshot({ path: join(ARTIFACTS, '5-chat-bob.png') });
    await bobPage.click('#logout');
    await page
      .locator('#roster li.contact[data-jid="bob@localhost"][data-show="offline"]')
      .waitFor({ timeout: 10_000 });
    await bobPage.close();
  });
  it('the browser XMPP module logs in with each mechanism the server offers, and refuses a wrong password', async () => {
    const results = await page.evaluate(
      async ({ ws, password }) => {
        // A URL of the page, not a module of this project: a variable keeps tsc from resolving it.
        const moduleUrl: string = '/xmpp.js';
        const { XmppClient } = await import(moduleUrl);
        const out: string[] = [];
        for (const [only, pw] of [
          ['SCRAM-SHA-256', password],
          ['SCRAM-SHA-1', password],
          ['PLAIN', password],
          ['SCRAM-SHA-1', `${password}x`],
        ]) {
          const c = new XmppClient();
          const auth = c.authenticate.bind(c);
          c.authenticate = (offered: string[], u: string, p: string) =>
            auth(
              offered.filter((m) => m === only),
              u,
              p,
            );
          try {
            const jid = await c.connect(ws, 'carol@localhost', pw, 'probe');
            // An XEP-0199 ping to our own full JID comes back to us and is answered by the module.
            const pong = await c.iq('get', jid, '<ping xmlns="urn:xmpp:ping"/>');
            out.push(`${c.mechanismUsed} ${jid} ${pong.getAttribute('type')}`);
          } catch (e) {
            out.push(`${only} failed: ${(e as Error).message}`);
          }
          c.close();
        }
        return out;
      },
      { ws: `ws://127.0.0.1:${httpPort}/xmpp-websocket`, password: users.carol!.password },
    );
    assert.deepEqual(results, [
      'SCRAM-SHA-256 carol@localhost/probe result',
      'SCRAM-SHA-1 carol@localhost/probe result',
      'PLAIN carol@localhost/probe result',
      'SCRAM-SHA-1 failed: Wrong JID or password',
    ]);
  });
  it('alice transfers her call with bob to carol from the page: carol’s phone rings, alice is out', async () => {
    const [alicePhone, bobPhone, carolPhone] = phones as [TestPhone, TestPhone, TestPhone];
    alicePhone.mode = 'answer';
    bobPhone.mode = 'ring';
    carolPhone.mode = 'ring';
    const bobRings = new Promise((resolve) => bobPhone.once('incoming', resolve));
    await page.fill('#dial-number', '100');
    await page.click('#keys button:text-is("2")');
    assert.equal(await page.inputValue('#dial-number'), '1002');
    await page.click('#dial');
    await bobRings;
    bobPhone.answer();
    // bob has answered when his phone contact says so (alice's side is "On the phone" from her answer on).
    await contact('1002@cti.localhost')
      .locator('.status', { hasText: 'On the phone' })
      .waitFor({ timeout: 10_000 });
    await page.locator('#call-state', { hasText: 'On the phone' }).waitFor({ timeout: 10_000 });

    const carolRings = new Promise((resolve) => carolPhone.once('incoming', resolve));
    const aliceBye = new Promise((resolve) => alicePhone.once('bye', resolve));
    await page.fill('#transfer-target', 'carol');
    await page.click('#transfer');
    await page
      .locator('#phone-log li', { hasText: 'Transferred to carol (1003).' })
      .waitFor({ timeout: 10_000 })
      .catch(async (e) => {
        console.log(`# phone log: ${await page.textContent('#phone-log')}`);
        throw e;
      });
    await carolRings;
    await aliceBye;
    await page.locator('#call-state', { hasText: 'No call' }).waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(ARTIFACTS, '6-transferred.png') });
  });
});
