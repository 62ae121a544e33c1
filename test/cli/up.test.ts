/**
 * `switchboard up` as a newcomer runs it: demo users on first start, a banner with their passwords,
 * every part reachable, metrics, a clean stop on SIGTERM, and no new users on the second start.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import WebSocket from 'ws';
import { Element } from '../../src/xml/index.ts';
import { XmppClient } from '../../src/xmpp/client.ts';
import { freeTcpPort, freeUdpTcpPort, Proc, waitUntil } from '../helpers/net.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const ED4 = 'http://www.ecma-international.org/standards/ecma-323/csta/ed4';

describe('switchboard up', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-up-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('starts every part with demo users, serves metrics, stops on SIGTERM, and keeps users on restart', async () => {
    const c2s = await freeTcpPort();
    const component = await freeTcpPort();
    const http = await freeTcpPort();
    const csta = await freeTcpPort();
    const sip = await freeUdpTcpPort();
    const config = join(dir, 'config.toml');
    writeFileSync(
      config,
      `log_level = "warn"\n[xmpp]\nc2s_port = ${c2s}\ncomponent_port = ${component}\n[http]\nport = ${http}\n[pbx]\ncsta_port = ${csta}\nsip_port = ${sip}\n`,
    );
    const data = join(dir, 'data');
    const up = new Proc(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'up', '--config', config, '--data', data],
      { cwd: ROOT },
    );
    try {
      await up.waitForOutput(/Switchboard is up/, 30_000);
      const [, password] = await up.waitForOutput(/alice@localhost {2}password (\S+) {2}phone 1001/, 5000);
      assert.match(up.output, /bob@localhost {2}password \S+ {2}phone 1002/);
      assert.match(up.output, /carol@localhost {2}password \S+ {2}phone 1003/);
      assert.match(
        readFileSync(join(data, 'demo-users.txt'), 'utf8'),
        new RegExp(`alice\\textension 1001\\tpassword ${password}`),
      );

      assert.match(
        up.output,
        new RegExp(`voice server {2}SIP 127\\.0\\.0\\.1:${sip} .*CSTA XML 127\\.0\\.0\\.1:${csta}`),
      );
      const metrics = async () => (await fetch(`http://127.0.0.1:${http}/metrics`)).text();
      await waitUntil(
        async () => /^switchboard_gateway_csta_link_up 1$/m.test(await metrics()),
        10_000,
        'gateway linked to the voice server',
      );
      // up's text server grants its own gateway XEP-0356 (pubsub iq): users' phone state goes out as PEP.
      await waitUntil(
        async () => /^switchboard_gateway_pep_mode\{mode="pep-iq"\} 1$/m.test(await metrics()),
        10_000,
        'gateway in pep-iq mode',
      );
      // alice logs in (STARTTLS with the self-signed certificate made on first start) and asks the gateway.
      const alice = await XmppClient.connect({
        host: '127.0.0.1',
        port: c2s,
        domain: 'localhost',
        username: 'alice',
        password: password!,
        tls: 'starttls',
      });
      const iq = new Element('iq', 'jabber:client', { type: 'get', to: 'cti.localhost', id: 's1' });
      iq.c('RequestSystemStatus', {}, ED4);
      const reply = await alice.iq(iq);
      assert.equal(reply.attr('type'), 'result');
      assert.equal(reply.getChild('RequestSystemStatusResponse')?.getChildText('systemStatus'), 'normal');
      await alice.close();

      const scraped = await metrics();
      for (const gauge of [
        'switchboard_xmpp_sessions',
        'switchboard_xmpp_components 1',
        'switchboard_pbx_registered_devices 0',
        'switchboard_pbx_active_calls 0',
        'switchboard_pbx_csta_monitors',
        'switchboard_gateway_client_monitors 0',
        'switchboard_gateway_device_monitors',
        'switchboard_gateway_csta_link_up 1',
        'switchboard_gateway_events_sent_total 0',
        'switchboard_gateway_monitors_ended_total{reason="timeout"} 0',
      ]) {
        assert.match(scraped, new RegExp(`^${gauge.replace(/[{}]/g, '\\$&')}`, 'm'), gauge);
      }

      // XMPP over WebSocket (RFC 7395) on the same HTTP port.
      const ws = new WebSocket(`ws://127.0.0.1:${http}/xmpp-websocket`, 'xmpp');
      const opened = await new Promise<string>((resolve, reject) => {
        ws.once('open', () =>
          ws.send("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>"),
        );
        ws.once('message', (data) => resolve(String(data)));
        ws.once('error', reject);
      });
      assert.match(opened, /^<open [^>]*xmlns=['"]urn:ietf:params:xml:ns:xmpp-framing['"]/);
      ws.close();

      // switchboard check reaches every part of the running deployment.
      const check = new Proc(
        process.execPath,
        [
          '--import',
          'tsx',
          'src/cli/main.ts',
          'check',
          '--config',
          config,
          '--user',
          'alice',
          `--password=${password}`,
        ],
        { cwd: ROOT },
      );
      assert.equal(await check.wait(30_000), 0, check.output);
      for (const line of [
        /^ok +text server c2s .*stream opened/m,
        /^ok +text server components .*stream opened/m,
        /^ok +voice server SIP .*200 OK/m,
        /^ok +voice server CSTA .*system status normal/m,
        /^ok +metrics .*gauges/m,
        /^ok +login: alice@localhost\//m,
        /^ok +gateway: cti\.localhost offers CSTA .*ed3, ed4, ed5, ed6/m,
        /^ok +gateway → voice server: system status normal/m,
        /^all 8 checks passed$/m,
      ]) {
        assert.match(check.output, line);
      }

      up.child.kill('SIGTERM');
      assert.equal(await up.wait(10_000), 0);

      // With nothing running, every check fails and says why.
      const down = new Proc(
        process.execPath,
        ['--import', 'tsx', 'src/cli/main.ts', 'check', '--config', config, '--timeout', '2'],
        { cwd: ROOT },
      );
      assert.equal(await down.wait(30_000), 1);
      assert.match(down.output, /^FAIL +text server c2s .*ECONNREFUSED/m);
      assert.match(down.output, /5 of 5 checks failed/);
    } finally {
      await up.stop();
    }

    const again = new Proc(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'up', '--config', config, '--data', data],
      { cwd: ROOT },
    );
    try {
      await again.waitForOutput(/Switchboard is up/, 30_000);
      assert.doesNotMatch(again.output, /Demo users|@localhost {2}password/);
      assert.match(again.output, /switchboard user list/);
    } finally {
      await again.stop();
    }
  });

  it('a bad config fails at start with one line naming the key', async () => {
    const config = join(dir, 'bad.toml');
    writeFileSync(config, '[xmpp]\nc2s_port = 99999\n');
    const up = new Proc(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'up', '--config', config, '--data', join(dir, 'bad')],
      { cwd: ROOT },
    );
    assert.equal(await up.wait(30_000), 2);
    assert.match(up.output.trim(), /^config: xmpp\.c2s_port: .+$/);
  });
});
