/** [xmpp] gateway_privileges and [xmpp.privileges."DOMAIN"]: what `switchboard xmpp` / `up` grant. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import pino from 'pino';
import { startTextServer } from '../../src/cli/xmpp.ts';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { PRIVILEGE_NS } from '../../src/xmpp-server/privilege.ts';
import { TestComponent } from './harness.ts';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'sb-priv-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const BASE = '[xmpp]\nc2s_port = 0\ncomponent_port = 0\ncomponent_secret = "gwsecret"\n';

function configFrom(t: TestContext, toml: string, env: NodeJS.ProcessEnv = {}) {
  const dir = tempDir(t);
  const file = join(dir, 'switchboard.toml');
  writeFileSync(file, toml);
  return { config: loadConfig({ file, env }), dir };
}

/** The perms a component is told about after its handshake ('' when it gets no advertisement). */
async function advertised(
  t: TestContext,
  toml: string,
  env: NodeJS.ProcessEnv = {},
  domain = 'cti.localhost',
  secret = 'gwsecret',
) {
  const { config, dir } = configFrom(t, toml, env);
  const { server, store } = await startTextServer(config, dir, pino({ level: 'silent' }));
  t.after(async () => {
    await server.stop();
    store.close();
  });
  const component = await TestComponent.connect(t, server.componentPort, domain, secret);
  assert.ok(component.handshakeOk);
  // A ping round trip: the advertisement, when there is one, comes before its answer.
  component.write(`<iq type='get' id='p' from='${domain}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
  await component.waitFor((el) => el.attr('id') === 'p');
  const message = component.received.find((el) => el.name === 'message');
  if (message === undefined) return '';
  return message
    .getChild('privilege', PRIVILEGE_NS)!
    .getChildren('perm')
    .map((p) => {
      const ns = p.getChildren('namespace').map((n) => `${n.attr('ns')}:${n.attr('type')}`);
      return `${p.attr('access')}=${p.attr('type') ?? ns.join(',')}${p.attr('push') === undefined ? '' : ` push=${p.attr('push')}`}`;
    })
    .join(' ');
}

const DEFAULT =
  'roster=get push=true message=outgoing presence=managed_entity iq=http://jabber.org/protocol/pubsub:set';

test('by default the gateway component gets what it needs for PEP; gateway_privileges = false turns it off', async (t) => {
  assert.equal(await advertised(t, BASE), DEFAULT);
  assert.equal(await advertised(t, BASE, { SWITCHBOARD_XMPP_GATEWAY_PRIVILEGES: 'false' }), '');
  assert.equal(await advertised(t, `${BASE}gateway_privileges = false\n`), '');
});

test('[xmpp.privileges] entries replace the default and grant other components', async (t) => {
  const toml =
    `${BASE}[xmpp.components]\n"pubsub.localhost" = "pubsecret"\n` +
    `[xmpp.privileges."cti.localhost"]\nmessage = "outgoing"\n` +
    `[xmpp.privileges."pubsub.localhost"]\nroster = "both"\nroster_push = false\npresence = "managed_entity"\n` +
    `iq = { "http://jabber.org/protocol/pubsub" = "both", "jabber:iq:version" = "get" }\n`;
  assert.equal(await advertised(t, toml), 'roster=none message=outgoing presence=none');
  assert.equal(
    await advertised(t, toml, {}, 'pubsub.localhost', 'pubsecret'),
    'roster=both push=false message=none presence=managed_entity iq=http://jabber.org/protocol/pubsub:both,jabber:iq:version:get',
  );
});

test('bad privilege configuration stops the start with a clear message', async (t) => {
  assert.throws(
    () => configFrom(t, `${BASE}[xmpp.privileges."cti.localhost"]\npresence = "roster"\n`),
    (e: Error) => e instanceof ConfigError && /xmpp\.privileges\.cti\.localhost\.presence/.test(e.message),
  );
  assert.throws(
    () => configFrom(t, `${BASE}[xmpp.privileges."cti.localhost"]\nroster = "all"\n`),
    (e: Error) => e instanceof ConfigError && /roster/.test(e.message),
  );
  assert.throws(
    () => configFrom(t, `${BASE}[xmpp.privileges."cti.localhost"]\nfrobnicate = 1\n`),
    /frobnicate: unknown key/,
  );
  const log = pino({ level: 'silent' });
  const unknown = configFrom(t, `${BASE}[xmpp.privileges."nowhere.localhost"]\nmessage = "outgoing"\n`);
  await assert.rejects(
    startTextServer(unknown.config, unknown.dir, log),
    /nowhere\.localhost is not a component/,
  );
  const nested = configFrom(
    t,
    `${BASE}[xmpp.privileges."cti.localhost"]\niq = { "${PRIVILEGE_NS}" = "set" }\n`,
  );
  await assert.rejects(startTextServer(nested.config, nested.dir, log), /not allowed/);
});
