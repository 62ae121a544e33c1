import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { AdHocCommands, COMMANDS_NS } from '../../src/gateway/adhoc.ts';
import { COMPONENT_NS } from '../../src/gateway/component.ts';
import { PhoneService } from '../../src/gateway/phone.ts';
import { type Element, parseDocument } from '../../src/xml/index.ts';
import { waitUntil } from '../helpers/net.ts';
import { setup } from './harness.ts';

const SILENT = { debug() {}, info() {}, warn() {} };
const ALICE = 'alice@localhost/gajim';

async function adhocSetup(t: TestContext) {
  const env = await setup(t, {
    grants: [
      { jid: 'alice@localhost', devices: ['1001'] },
      { jid: 'bob@localhost', devices: ['1002'] },
    ],
  });
  const phone = new PhoneService({
    gateway: env.gateway,
    xmpp: env.xmpp,
    jid: 'cti.localhost',
    users: [
      { jid: 'alice@localhost', name: 'alice', extension: '1001' },
      { jid: 'bob@localhost', name: 'bob', extension: '1002' },
    ],
    log: SILENT,
  });
  t.after(() => phone.close());
  const adhoc = new AdHocCommands('cti.localhost', env.xmpp, phone);
  let n = 0;
  const send = async (from: string, type: 'get' | 'set', payload: string): Promise<Element> => {
    const id = `a${++n}`;
    const iq = parseDocument(
      `<iq xmlns='${COMPONENT_NS}' type='${type}' id='${id}' from='${from}' to='cti.localhost'>${payload}</iq>`,
    );
    assert.equal(adhoc.handles(iq), true);
    adhoc.handle(iq);
    return env.xmpp.answer(id);
  };
  return { ...env, adhoc, phone, send };
}

describe('XEP-0050 ad-hoc commands', () => {
  it('lists the phone commands in disco#items and describes each node', async (t) => {
    const { send } = await adhocSetup(t);
    const items = await send(
      ALICE,
      'get',
      `<query xmlns='http://jabber.org/protocol/disco#items' node='${COMMANDS_NS}'/>`,
    );
    assert.deepEqual(
      items
        .getChild('query')!
        .getChildren('item')
        .map((i) => [i.attr('node'), i.attr('name')]),
      [
        ['call', 'Call'],
        ['answer', 'Answer'],
        ['hangup', 'Hang up'],
        ['hold', 'Hold'],
        ['retrieve', 'Retrieve'],
        ['transfer', 'Transfer'],
        ['deflect', 'Deflect'],
        ['dnd', 'Do not disturb'],
        ['forward', 'Forwarding'],
        ['share', 'Phone sharing'],
      ],
    );
    const info = await send(
      ALICE,
      'get',
      "<query xmlns='http://jabber.org/protocol/disco#info' node='call'/>",
    );
    assert.equal(info.getChild('query')!.getChild('identity')!.attr('type'), 'command-node');
  });

  it('Call: a form asking for the target, then the call from the user’s phone', async (t) => {
    const { send, pbx } = await adhocSetup(t);
    const first = await send(ALICE, 'set', `<command xmlns='${COMMANDS_NS}' node='call' action='execute'/>`);
    const command = first.getChild('command')!;
    assert.equal(command.attr('status'), 'executing');
    const sessionid = command.attr('sessionid')!;
    const field = command.getChild('x', 'jabber:x:data')!.getChild('field')!;
    assert.equal(field.attr('var'), 'target');
    assert.ok(field.getChild('required'));
    const done = await send(
      ALICE,
      'set',
      `<command xmlns='${COMMANDS_NS}' node='call' sessionid='${sessionid}'><x xmlns='jabber:x:data' type='submit'><field var='target'><value>bob</value></field></x></command>`,
    );
    assert.equal(done.getChild('command')!.attr('status'), 'completed');
    assert.equal(done.getChild('command')!.getChildText('note'), 'Calling bob (1002) from your phone 1001 …');
    await waitUntil(() => pbx.received.some((m) => m.name === 'MakeCall'), 3000, 'MakeCall');
    // The session is used up.
    const again = await send(
      ALICE,
      'set',
      `<command xmlns='${COMMANDS_NS}' node='call' sessionid='${sessionid}'><x xmlns='jabber:x:data' type='submit'><field var='target'><value>bob</value></field></x></command>`,
    );
    assert.equal(again.attr('type'), 'error');
    assert.ok(again.getChild('error')!.getChild('bad-sessionid', COMMANDS_NS));
  });

  it('single-stage commands complete at once; forms check required fields; cancel; unknown nodes', async (t) => {
    const { send, pbx } = await adhocSetup(t);
    const hangup = await send(
      ALICE,
      'set',
      `<command xmlns='${COMMANDS_NS}' node='hangup' action='execute'/>`,
    );
    assert.equal(hangup.getChild('command')!.attr('status'), 'completed');
    assert.equal(hangup.getChild('command')!.getChildText('note'), 'You have no call to hang up.');

    const dnd = await send(ALICE, 'set', `<command xmlns='${COMMANDS_NS}' node='dnd'/>`);
    const sid = dnd.getChild('command')!.attr('sessionid')!;
    const options = dnd
      .getChild('command')!
      .find('x', 'field')!
      .getChildren('option')
      .map((o) => o.getChildText('value'));
    assert.deepEqual(options, ['on', 'off']);
    const empty = await send(
      ALICE,
      'set',
      `<command xmlns='${COMMANDS_NS}' node='dnd' sessionid='${sid}'><x xmlns='jabber:x:data' type='submit'/></command>`,
    );
    assert.equal(empty.attr('type'), 'error');
    const dnd2 = await send(ALICE, 'set', `<command xmlns='${COMMANDS_NS}' node='dnd'/>`);
    const sid2 = dnd2.getChild('command')!.attr('sessionid')!;
    const on = await send(
      ALICE,
      'set',
      `<command xmlns='${COMMANDS_NS}' node='dnd' sessionid='${sid2}'><x xmlns='jabber:x:data' type='submit'><field var='state'><value>on</value></field></x></command>`,
    );
    assert.equal(on.getChild('command')!.getChildText('note'), 'Do not disturb is on.');
    assert.ok(pbx.received.some((m) => m.name === 'SetDoNotDisturb'));

    const fwd = await send(ALICE, 'set', `<command xmlns='${COMMANDS_NS}' node='forward'/>`);
    const cancel = await send(
      ALICE,
      'set',
      `<command xmlns='${COMMANDS_NS}' node='forward' sessionid='${fwd.getChild('command')!.attr('sessionid')}' action='cancel'/>`,
    );
    assert.equal(cancel.getChild('command')!.attr('status'), 'canceled');

    const unknown = await send(ALICE, 'set', `<command xmlns='${COMMANDS_NS}' node='launch'/>`);
    assert.ok(unknown.getChild('error')!.getChild('item-not-found', 'urn:ietf:params:xml:ns:xmpp-stanzas'));
  });

  it('another JID cannot continue someone else’s session; users without a phone are told so', async (t) => {
    const { send } = await adhocSetup(t);
    const first = await send(ALICE, 'set', `<command xmlns='${COMMANDS_NS}' node='call'/>`);
    const sid = first.getChild('command')!.attr('sessionid')!;
    const stolen = await send(
      'bob@localhost/x',
      'set',
      `<command xmlns='${COMMANDS_NS}' node='call' sessionid='${sid}'><x xmlns='jabber:x:data' type='submit'><field var='target'><value>1003</value></field></x></command>`,
    );
    assert.equal(stolen.attr('type'), 'error');
    const stranger = await send('eve@localhost/x', 'set', `<command xmlns='${COMMANDS_NS}' node='hangup'/>`);
    const note = stranger.getChild('command')!.getChild('note')!;
    assert.equal(note.attr('type'), 'error');
    assert.match(note.text(), /You have no phone here/);
  });

  it('Phone sharing: a form with the contact and the level; an empty contact lists the settings', async (t) => {
    const { send, phone } = await adhocSetup(t);
    /** The form's instructions: the owner's current settings, as `share` lists them. */
    let instructions = '';
    const submit = async (contact: string, level: string) => {
      const first = await send(
        ALICE,
        'set',
        `<command xmlns='${COMMANDS_NS}' node='share' action='execute'/>`,
      );
      const command = first.getChild('command')!;
      instructions = command.getChild('x', 'jabber:x:data')!.getChildText('instructions') ?? '';
      const fields = command.getChild('x', 'jabber:x:data')!.getChildren('field');
      assert.deepEqual(
        fields.map((f) => [f.attr('var'), f.attr('type')]),
        [
          ['contact', 'text-single'],
          ['level', 'list-single'],
        ],
      );
      assert.deepEqual(
        fields[1]!.getChildren('option').map((o) => o.getChildText('value')),
        ['none', 'state', 'numbers', 'default'],
      );
      const done = await send(
        ALICE,
        'set',
        `<command xmlns='${COMMANDS_NS}' node='share' sessionid='${command.attr('sessionid')}'><x xmlns='jabber:x:data' type='submit'><field var='contact'><value>${contact}</value></field><field var='level'><value>${level}</value></field></x></command>`,
      );
      assert.equal(done.getChild('command')!.attr('status'), 'completed');
      return done.getChild('command')!.getChildText('note')!;
    };
    assert.match(await submit('bob', 'numbers'), /^bob@localhost now sees numbers: /);
    assert.doesNotMatch(instructions, /bob@localhost/);
    assert.equal(phone.sharing.level('1001', 'bob@localhost'), 'numbers');
    assert.match(
      await submit('', ''),
      /^Your phone 1001: others see state .*\nbob@localhost: numbers \(your setting\)$/,
    );
    // The next form shows the settings before the owner picks a contact.
    assert.match(
      instructions,
      /^Your phone 1001: others see state .*\nbob@localhost: numbers \(your setting\)$/,
    );
    assert.match(await submit('bob', ''), /^Say "share <contact> none\|state\|numbers"/);
    assert.match(await submit('bob', 'default'), /^bob@localhost now sees state: /);
    assert.equal(phone.sharing.setting('1001', 'bob@localhost'), undefined);
  });
});
