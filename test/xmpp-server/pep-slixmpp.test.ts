/**
 * PEP and XEP-0356 against slixmpp 1.8 (its own XEP-0115, XEP-0163, XEP-0108, XEP-0118 and XEP-0356
 * code): phone activity a component publishes for a user reaches a slixmpp contact, a slixmpp client's
 * own tune reaches another, a contact logging in later gets the last item, and a slixmpp component
 * reads the advertised privileges, a user's roster, and sends a message as that user.
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { Element } from '../../src/xml/index.ts';
import { NS } from '../../src/xmpp/ns.ts';
import { GATEWAY_DEFAULT_GRANT, PRIVILEGE_NS } from '../../src/xmpp-server/privilege.ts';
import type { XmppServer } from '../../src/xmpp-server/server.ts';
import { Proc, waitUntil } from '../helpers/net.ts';
import { requirePeer } from '../helpers/peers.ts';
import { GATEWAY, GATEWAY_SECRET, login, presence, startServer, TestComponent } from './harness.ts';
import { ACTIVITY, onThePhone, publishIq, subscribe, TUNE } from './pep-helpers.ts';

const PYTHON = requirePeer('python3-slixmpp');
const SCRIPT = new URL('./peers/slix_pep.py', import.meta.url).pathname;

function slix(t: TestContext, server: XmppServer, args: string[]): Proc {
  const proc = new Proc(PYTHON, [SCRIPT, '--port', String(server.c2sPort), ...args]);
  t.after(() => proc.stop());
  return proc;
}

async function server(t: TestContext): Promise<XmppServer> {
  const s = await startServer(t, undefined, { privileges: new Map([[GATEWAY, GATEWAY_DEFAULT_GRANT]]) });
  subscribe(s.store, 'alice', 'bob');
  return s;
}

/** Waits until the server has the slixmpp resource's caps (its disco#info answer verified). */
async function capsKnown(s: XmppServer, jid: string, node: string): Promise<void> {
  await waitUntil(() => s.router.caps.wantsNotify(jid, node), 15_000, `${node}+notify from ${jid}`);
}

async function privilegedComponent(t: TestContext, s: XmppServer): Promise<TestComponent> {
  const gw = await TestComponent.connect(t, s.componentPort);
  await gw.waitFor((el) => el.name === 'message' && el.getChild('privilege', PRIVILEGE_NS) !== undefined);
  return gw;
}

let publishCount = 0;

async function publishAsAlice(gw: TestComponent, text: string): Promise<void> {
  const id = `phone${++publishCount}`;
  const outer = new Element('iq', NS.component, { type: 'set', id, from: GATEWAY, to: 'alice@localhost' });
  const inner = publishIq(ACTIVITY, onThePhone(text));
  inner.setAttr('id', 'pub1');
  inner.setAttr('from', 'alice@localhost');
  outer.c('privileged_iq', {}, PRIVILEGE_NS).append(inner);
  gw.send(outer);
  const answer = await gw.waitFor((el) => el.attr('id') === id);
  assert.equal(answer.find('privilege', 'forwarded', 'iq')?.attr('type'), 'result');
}

test('a slixmpp contact gets the phone activity a component publishes for alice through a privileged iq', async (t) => {
  const s = await server(t);
  const bob = slix(t, s, ['--jid', 'bob@localhost/slix', '--password', 'bobpw', '--expect', '1']);
  await bob.waitForOutput(/READY/, 20_000);
  await capsKnown(s, 'bob@localhost/slix', ACTIVITY);
  await publishAsAlice(await privilegedComponent(t, s), 'On the phone with 1002');
  assert.equal(await bob.wait(20_000), 0, bob.output);
  assert.match(
    bob.output,
    /ACTIVITY from=alice@localhost general=talking specific=on_the_phone text=On the phone with 1002 delayed=no/,
  );
});

test("a slixmpp client publishes its tune; a slixmpp contact gets it, and so does the publisher's own client", async (t) => {
  const s = await server(t);
  const bob = slix(t, s, ['--jid', 'bob@localhost/slix', '--password', 'bobpw', '--expect', '1']);
  await bob.waitForOutput(/READY/, 20_000);
  await capsKnown(s, 'bob@localhost/slix', TUNE);
  const alice = slix(t, s, [
    '--jid',
    'alice@localhost/slix',
    '--password',
    'alicepw',
    '--publish-tune',
    'Gerald Finzi|Introduction (Allegro vigoroso)',
    '--expect',
    '1',
  ]);
  assert.equal(await alice.wait(20_000), 0, alice.output);
  assert.match(alice.output, /PUBLISHED tune/);
  assert.match(
    alice.output,
    /TUNE from=alice@localhost artist=Gerald Finzi title=Introduction \(Allegro vigoroso\)/,
  );
  assert.equal(await bob.wait(20_000), 0, bob.output);
  assert.match(
    bob.output,
    /TUNE from=alice@localhost artist=Gerald Finzi title=Introduction \(Allegro vigoroso\)/,
  );
  // Stored: alice's node has the item slixmpp gave the id 'current'.
  assert.deepEqual(
    s.store.getPepItems('alice', TUNE).map((i) => i.id),
    ['current'],
  );
});

test('a slixmpp contact that logs in later gets the last published item, with its delay stamp', async (t) => {
  const s = await server(t);
  const gw = await privilegedComponent(t, s);
  await publishAsAlice(gw, 'Ringing');
  await publishAsAlice(gw, 'On the phone with 1003');
  const bob = slix(t, s, ['--jid', 'bob@localhost/later', '--password', 'bobpw', '--expect', '1']);
  assert.equal(await bob.wait(30_000), 0, bob.output);
  assert.match(
    bob.output,
    /ACTIVITY from=alice@localhost general=talking specific=on_the_phone text=On the phone with 1003 delayed=yes/,
  );
  assert.doesNotMatch(bob.output, /Ringing/);
});

test("slixmpp's XEP-0356 component: reads the advertised permissions and alice's roster, and sends a message as alice", async (t) => {
  const s = await server(t);
  const bob = await login(t, s, 'bob');
  bob.send(presence());
  const component = new Proc(PYTHON, [
    SCRIPT,
    '--component',
    '--jid',
    GATEWAY,
    '--password',
    GATEWAY_SECRET,
    '--port',
    String(s.componentPort),
    '--roster-of',
    'alice@localhost',
    '--message-as',
    'alice@localhost',
    '--message-to',
    'bob@localhost',
  ]);
  t.after(() => component.stop());
  assert.equal(await component.wait(20_000), 0, component.output);
  assert.match(component.output, /PRIVILEGES roster=get message=outgoing presence=managed_entity/);
  assert.match(component.output, /ROSTER of=alice@localhost items=bob@localhost:both/);
  assert.doesNotMatch(component.output, /FAIL/);
  const m = await bob.waitFor(
    (el) => el.name === 'message' && el.getChildText('body') === 'hello from the privileged component',
  );
  assert.equal(m.attr('from'), 'alice@localhost');
});
