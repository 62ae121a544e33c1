import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import type { CstaMessage } from '../../src/csta/index.ts';
import { COMPONENT_NS } from '../../src/gateway/component.ts';
import { PhoneService, type PhoneServiceOptions } from '../../src/gateway/phone.ts';
import { type Element, parseDocument } from '../../src/xml/index.ts';
import { waitUntil } from '../helpers/net.ts';
import { setup } from './harness.ts';

const GRANTS = [
  { jid: 'alice@localhost', devices: ['1001'] },
  { jid: 'bob@localhost', devices: ['1002'] },
  { jid: 'carol@localhost', devices: ['1003'] },
];
const SILENT = { debug() {}, info() {}, warn() {} };

async function phoneSetup(t: TestContext, options: Partial<PhoneServiceOptions> = {}) {
  const env = await setup(t, { grants: GRANTS });
  const dir = mkdtempSync(join(tmpdir(), 'sb-phone-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'phone-subscriptions.json');
  const sharingFile = join(dir, 'phone-sharing.json');
  const make = () =>
    new PhoneService({
      gateway: env.gateway,
      xmpp: env.xmpp,
      jid: 'cti.localhost',
      users: GRANTS.map((g) => ({ jid: g.jid, name: g.jid.split('@')[0]!, extension: g.devices[0]! })),
      subscriptionsFile: file,
      sharingFile,
      log: SILENT,
      ...options,
    });
  const phone = make();
  t.after(() => phone.close());
  const say = (from: string, body: string, to = 'cti.localhost') =>
    phone.handleStanza(
      parseDocument(
        `<message xmlns='${COMPONENT_NS}' type='chat' from='${from}' to='${to}'><body>${body}</body></message>`,
      ),
    );
  const presence = (from: string, to: string, type: string) =>
    phone.handleStanza(
      parseDocument(`<presence xmlns='${COMPONENT_NS}' from='${from}' to='${to}' type='${type}'/>`),
    );
  const messagesTo = (jid: string): string[] =>
    env.xmpp.sent
      .filter((s) => s.name === 'message' && s.attr('to') === jid)
      .map((s) => s.getChildText('body')!);
  const waitMessage = async (jid: string, pattern: RegExp): Promise<Element> => {
    let found: Element | undefined;
    await waitUntil(
      () => {
        found = env.xmpp.sent.find(
          (s) => s.name === 'message' && s.attr('to') === jid && pattern.test(s.getChildText('body') ?? ''),
        );
        return found !== undefined;
      },
      3000,
      `message ${pattern} to ${jid}`,
    );
    return found!;
  };
  const watched = (device: string) =>
    waitUntil(() => env.pbx.xrefFor(device) !== undefined, 3000, `monitor of ${device}`);
  const event = (device: string, m: Record<string, unknown>) =>
    env.pbx.connection!.sendEvent({
      monitorCrossRefID: env.pbx.xrefFor(device)!,
      cause: 'newCall',
      ...m,
    } as CstaMessage);
  return { ...env, phone, make, file, sharingFile, say, presence, messagesTo, waitMessage, event, watched };
}

const dev = (d: string) => ({ deviceIdentifier: d });

describe('chat commands', () => {
  it('"call bob" makes a call from the sender’s own phone and says so', async (t) => {
    const { say, waitMessage, pbx } = await phoneSetup(t);
    say('alice@localhost/laptop', 'Call Bob');
    await waitMessage('alice@localhost/laptop', /^Calling bob \(1002\) from your phone 1001 …$/);
    await waitUntil(() => pbx.received.some((m) => m.name === 'MakeCall'), 3000, 'MakeCall');
    const mc = pbx.received.find((m) => m.name === 'MakeCall') as Record<string, unknown>;
    assert.equal(mc.callingDevice, '1001');
    assert.equal(mc.calledDirectoryNumber, '1002');
    assert.equal(mc.autoOriginate, 'prompt');
  });

  it('targets resolve from a number, a JID and a phone contact; "call" sent to a phone contact calls it', async (t) => {
    const { say, waitMessage, pbx } = await phoneSetup(t);
    say('alice@localhost/laptop', 'call 1003');
    await waitMessage('alice@localhost/laptop', /^Calling 1003 \(carol\) from your phone 1001/);
    say('alice@localhost/laptop', 'call carol@localhost');
    await waitMessage('alice@localhost/laptop', /^Calling carol \(1003\)/);
    say('alice@localhost/laptop', 'call', '1002@cti.localhost');
    const reply = await waitMessage('alice@localhost/laptop', /^Calling 1002 \(bob\)/);
    assert.equal(reply.attr('from'), '1002@cti.localhost', 'the phone contact answers in its own chat');
    await waitUntil(
      () => pbx.received.filter((m) => m.name === 'MakeCall').length === 3,
      3000,
      'three MakeCalls',
    );
    say('alice@localhost/laptop', 'call nobody-here');
    await waitMessage('alice@localhost/laptop', /^I do not know who "nobody-here" is/);
  });

  it('clear answers when there is nothing to act on, for unknown commands and for users without a phone', async (t) => {
    const { say, waitMessage } = await phoneSetup(t);
    say('alice@localhost/x', 'hold');
    await waitMessage('alice@localhost/x', /^You have no call to hold\.$/);
    say('alice@localhost/x', 'hangup');
    await waitMessage('alice@localhost/x', /^You have no call to hang up\.$/);
    say('alice@localhost/x', 'retrieve');
    await waitMessage('alice@localhost/x', /^You have no call on hold\.$/);
    say('alice@localhost/x', 'answer');
    await waitMessage('alice@localhost/x', /^You have no ringing call to answer\.$/);
    say('alice@localhost/x', 'fly');
    await waitMessage('alice@localhost/x', /^I do not know "fly"/);
    say('alice@localhost/x', 'HELP');
    await waitMessage('alice@localhost/x', /call <number\|name\|JID>/);
    say('mallory@evil.example/x', 'call bob');
    await waitMessage('mallory@evil.example/x', /^You have no phone here/);
  });

  it('incoming and missed call messages, hangup acting on the current call, dnd', async (t) => {
    const { say, waitMessage, event, pbx, presence, xmpp, watched } = await phoneSetup(t);
    // bob watches his own phone: its presence tells the test when the gateway has seen each event.
    presence('bob@localhost/desk', '1002@cti.localhost', 'subscribe');
    await watched('1002');
    const bobSees = (status: string) =>
      waitUntil(
        () =>
          xmpp.sent.some(
            (s) =>
              s.name === 'presence' &&
              s.attr('to') === 'bob@localhost' &&
              s.getChildText('status') === status,
          ),
        3000,
        `presence "${status}"`,
      );
    const delivered = (callID: string) =>
      event('1002', {
        name: 'DeliveredEvent',
        connection: { callID, deviceID: '1002' },
        alertingDevice: dev('1002'),
        callingDevice: dev('1001'),
        calledDevice: dev('1002'),
        lastRedirectionDevice: { notKnown: true },
        localConnectionInfo: 'alerting',
      });
    delivered('c1');
    const incoming = await waitMessage(
      'bob@localhost',
      /^Incoming call from 1001 \(alice\)\nalice@localhost$/,
    );
    assert.equal(incoming.attr('from'), '1002@cti.localhost');
    event('1002', {
      name: 'EstablishedEvent',
      establishedConnection: { callID: 'c1', deviceID: '1002' },
      answeringDevice: dev('1002'),
      callingDevice: dev('1001'),
      calledDevice: dev('1002'),
      lastRedirectionDevice: { notKnown: true },
      localConnectionInfo: 'connected',
    });
    await bobSees('On the phone (from 1001)');
    say('bob@localhost/desk', 'status');
    await waitMessage(
      'bob@localhost/desk',
      /^Your phone 1002: On the phone \(from 1001\)\nfrom 1001 \(alice\): connected$/,
    );
    say('bob@localhost/desk', 'hangup');
    await waitMessage('bob@localhost/desk', /^Hung up\.$/);
    const cc = pbx.received.find((m) => m.name === 'ClearConnection') as Record<string, unknown>;
    assert.deepEqual(cc.connectionToBeCleared, { callID: 'c1', deviceID: '1002' });

    delivered('c2');
    event('1002', {
      name: 'ConnectionClearedEvent',
      droppedConnection: { callID: 'c2', deviceID: '1002' },
      releasingDevice: dev('1001'),
      localConnectionInfo: 'null',
      cause: 'normalClearing',
    });
    await waitMessage('bob@localhost', /^Missed call from 1001 \(alice\)/);

    say('bob@localhost/desk', 'dnd on');
    await waitMessage('bob@localhost/desk', /^Do not disturb is on\.$/);
    const dnd = pbx.received.find((m) => m.name === 'SetDoNotDisturb') as Record<string, unknown>;
    assert.deepEqual([dnd.device, dnd.doNotDisturbOn], ['1002', true]);
  });

  it('a failure from the voice server is explained', async (t) => {
    const { say, waitMessage } = await phoneSetup(t);
    say('alice@localhost/x', 'call 486');
    await waitMessage('alice@localhost/x', /^That did not work: systemResourceAvailibility\/resourceBusy$/);
  });
});

describe('phone contacts', () => {
  it('approves a subscription, sends presence that follows the phone, numbers only to the owner, and keeps it', async (t) => {
    const { presence, xmpp, event, file, watched } = await phoneSetup(t);
    presence('alice@localhost/laptop', '1002@cti.localhost', 'subscribe');
    presence('bob@localhost/desk', '1002@cti.localhost', 'subscribe');
    await watched('1002');
    const toAlice = () =>
      xmpp.sent.filter((s) => s.name === 'presence' && s.attr('to') === 'alice@localhost');
    const toBob = () => xmpp.sent.filter((s) => s.name === 'presence' && s.attr('to') === 'bob@localhost');
    assert.equal(toAlice()[0]!.attr('type'), 'subscribed');
    assert.equal(toAlice()[0]!.attr('from'), '1002@cti.localhost');
    assert.equal(toAlice()[1]!.getChildText('status'), 'Idle');
    assert.equal(toAlice()[1]!.getChild('show'), undefined);
    // The gateway asks for the subscriber's presence in return (XEP-0100 style).
    assert.equal(toAlice()[2]!.attr('type'), 'subscribe');

    event('1002', {
      name: 'DeliveredEvent',
      connection: { callID: 'c9', deviceID: '1002' },
      alertingDevice: dev('1002'),
      callingDevice: dev('1001'),
      calledDevice: dev('1002'),
      lastRedirectionDevice: { notKnown: true },
      localConnectionInfo: 'alerting',
    });
    await waitUntil(() => toAlice().length === 4 && toBob().length === 4, 3000, 'presence update');
    assert.equal(toAlice()[3]!.getChildText('show'), 'dnd');
    assert.equal(toAlice()[3]!.getChildText('status'), 'Ringing');
    assert.equal(toBob()[3]!.getChildText('status'), 'Ringing (from 1001)');

    event('1002', { name: 'OutOfServiceEvent', device: dev('1002') });
    await waitUntil(() => toAlice().length === 5, 3000, 'unavailable');
    assert.equal(toAlice()[4]!.attr('type'), 'unavailable');

    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), {
      '1002': ['alice@localhost', 'bob@localhost'],
    });
    presence('alice@localhost', '1002@cti.localhost', 'unsubscribe');
    assert.equal(toAlice().at(-1)!.attr('type'), 'unsubscribed');
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { '1002': ['bob@localhost'] });
  });

  it('watches a phone only while its owner or a subscriber is online (no events for nobody)', async (t) => {
    const { phone, pbx, gateway } = await phoneSetup(t);
    const say = (from: string, type?: string) =>
      phone.handleStanza(
        parseDocument(
          `<presence xmlns='${COMPONENT_NS}' from='${from}' to='cti.localhost'${type ? ` type='${type}'` : ''}/>`,
        ),
      );
    assert.deepEqual(phone.watchedExtensions, []);
    assert.equal(pbx.monitors.size, 0);
    say('alice@localhost/laptop');
    say('alice@localhost/phone');
    await waitUntil(() => pbx.xrefFor('1001') !== undefined, 3000, 'monitor for alice’s phone');
    assert.deepEqual(phone.watchedExtensions, ['1001']);
    say('alice@localhost/laptop', 'unavailable');
    assert.deepEqual(phone.watchedExtensions, ['1001'], 'another resource is still online');
    say('alice@localhost/phone', 'unavailable');
    assert.deepEqual(phone.watchedExtensions, []);
    await waitUntil(
      () => pbx.monitors.size === 0 && gateway.deviceMonitorCount === 0,
      3000,
      'MonitorStop at the PBX',
    );
  });

  it('shows what the phone is already doing when watching starts (GetDoNotDisturb, SnapshotDevice)', async (t) => {
    const { presence, xmpp, pbx } = await phoneSetup(t);
    pbx.dnd.add('1003');
    pbx.snapshots.set('1002', [['c42', 'connected']]);
    presence('alice@localhost/laptop', '1003@cti.localhost', 'subscribe');
    presence('alice@localhost/laptop', '1002@cti.localhost', 'subscribe');
    const statusFrom = (contact: string) =>
      xmpp.sent
        .filter(
          (s) => s.name === 'presence' && s.attr('from') === contact && s.attr('to') === 'alice@localhost',
        )
        .map((s) => s.getChildText('status'))
        .filter((x) => x !== undefined);
    await waitUntil(
      () => statusFrom('1003@cti.localhost').includes('Do not disturb'),
      3000,
      'DND from GetDoNotDisturb',
    );
    await waitUntil(
      () => statusFrom('1002@cti.localhost').includes('On the phone'),
      3000,
      'call from SnapshotDevice',
    );
  });

  it('answers probes, refuses unknown phones and other domains', async (t) => {
    const { presence, xmpp } = await phoneSetup(t);
    presence('carol@localhost', '1001@cti.localhost', 'probe');
    const last = () => xmpp.sent.at(-1)!;
    assert.equal(last().attr('from'), '1001@cti.localhost');
    assert.equal(last().getChildText('status'), 'Idle');
    presence('carol@localhost', '4711@cti.localhost', 'subscribe');
    assert.equal(last().attr('type'), 'unsubscribed');
    presence('eve@elsewhere.example', '1001@cti.localhost', 'subscribe');
    assert.equal(last().attr('type'), 'unsubscribed');
  });
});

describe('how much of a phone its subscribers see (issue 9 item 3)', () => {
  const ringing = (callID: string, device: string, caller: string) => ({
    name: 'DeliveredEvent',
    connection: { callID, deviceID: device },
    alertingDevice: dev(device),
    callingDevice: dev(caller),
    calledDevice: dev(device),
    lastRedirectionDevice: { notKnown: true },
    localConnectionInfo: 'alerting',
  });

  /** What `jid` was shown of a phone contact, in order: the status, or "unavailable <status or ->". */
  const shownTo = (sent: Element[], jid: string, contact = '1001@cti.localhost') =>
    sent
      .filter(
        (s) =>
          s.name === 'presence' &&
          s.attr('to') === jid &&
          s.attr('from') === contact &&
          s.attr('type') !== 'subscribed' &&
          s.attr('type') !== 'subscribe',
      )
      .map((s) =>
        s.attr('type') === 'unavailable'
          ? `unavailable ${s.getChildText('status') ?? '-'}`
          : (s.getChildText('status') ?? '-'),
      );

  it('numbers go only to the owner by default; the owner’s "share" changes what one subscriber sees at once, and is kept', async (t) => {
    const { presence, say, waitMessage, event, watched, xmpp, sharingFile, make } = await phoneSetup(t);
    for (const who of ['alice', 'bob', 'carol'])
      presence(`${who}@localhost/x`, '1001@cti.localhost', 'subscribe');
    await watched('1001');
    const seen = (who: string) => shownTo(xmpp.sent, `${who}@localhost`);
    const sees = (who: string, status: string) =>
      waitUntil(() => seen(who).at(-1) === status, 3000, `${who} sees "${status}"`);
    event('1001', ringing('c1', '1001', '1002'));
    await sees('alice', 'Ringing (from 1002)');
    await sees('bob', 'Ringing');
    await sees('carol', 'Ringing');

    say('alice@localhost/x', 'share bob numbers');
    await waitMessage(
      'alice@localhost/x',
      /^bob@localhost now sees numbers: your phone state with the other party’s number\.$/,
    );
    assert.equal(seen('bob').at(-1), 'Ringing (from 1002)', 'at once, before the next event');
    assert.equal(seen('carol').length, 2, 'the others are not touched');

    say('alice@localhost/x', 'SHARE Bob None');
    await waitMessage('alice@localhost/x', /^bob@localhost now sees none: nothing/);
    assert.equal(seen('bob').at(-1), 'unavailable -', 'no state, not even "Not registered"');
    const bobCount = seen('bob').length;
    event('1001', {
      name: 'EstablishedEvent',
      establishedConnection: { callID: 'c1', deviceID: '1001' },
      answeringDevice: dev('1001'),
      callingDevice: dev('1002'),
      calledDevice: dev('1001'),
      lastRedirectionDevice: { notKnown: true },
      localConnectionInfo: 'connected',
    });
    await sees('carol', 'On the phone');
    await sees('alice', 'On the phone (from 1002)');
    assert.equal(
      seen('bob').length,
      bobCount,
      'a subscriber who may see nothing is not told that something changed',
    );

    say('alice@localhost/x', 'share');
    await waitMessage(
      'alice@localhost/x',
      /^Your phone 1001: others see state unless you set otherwise \(your administrator's setting\)\.\nbob@localhost: none \(your setting, subscribed\)\ncarol@localhost: state \(default, subscribed\)$/,
    );
    assert.deepEqual(JSON.parse(readFileSync(sharingFile, 'utf8')), { '1001': { 'bob@localhost': 'none' } });
    const restarted = make();
    t.after(() => restarted.close());
    assert.equal(restarted.sharing.level('1001', 'bob@localhost'), 'none', 'kept across a restart');

    say('alice@localhost/x', 'share bob default');
    await sees('bob', 'On the phone');
    assert.deepEqual(JSON.parse(readFileSync(sharingFile, 'utf8')), {});
  });

  it('administrator’s levels: default none refuses subscriptions (not the owner’s); a device may share numbers; the owner may open up', async (t) => {
    const { presence, say, waitMessage, event, watched, xmpp, file, make } = await phoneSetup(t, {
      sharing: { default: 'none', devices: { '1002': 'numbers' } },
    });
    const last = () => xmpp.sent.at(-1)!;
    const approved = (jid: string, contact: string) =>
      xmpp.sent.some(
        (s) => s.attr('to') === jid && s.attr('from') === contact && s.attr('type') === 'subscribed',
      );
    presence('carol@localhost/x', '1001@cti.localhost', 'subscribe');
    assert.equal(last().attr('type'), 'unsubscribed');
    // carol's subscription from before the administrator shared nothing ends at her server's next probe.
    writeFileSync(file, JSON.stringify({ '1001': ['carol@localhost'] }));
    const restarted = make();
    t.after(() => restarted.close());
    restarted.handleStanza(
      parseDocument(
        `<presence xmlns='${COMPONENT_NS}' from='carol@localhost' to='1001@cti.localhost' type='probe'/>`,
      ),
    );
    assert.equal(last().attr('type'), 'unsubscribed', 'a subscription from before is ended');
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), {});
    presence('alice@localhost/x', '1001@cti.localhost', 'subscribe');
    assert.ok(approved('alice@localhost', '1001@cti.localhost'), 'the owner always sees their phone');

    say('alice@localhost/x', 'share carol state');
    await waitMessage(
      'alice@localhost/x',
      /^carol@localhost now sees state: .* \(They can add 1001@cti\.localhost to their contacts\.\)$/,
    );
    presence('carol@localhost/x', '1001@cti.localhost', 'subscribe');
    assert.ok(approved('carol@localhost', '1001@cti.localhost'));

    presence('carol@localhost/x', '1002@cti.localhost', 'subscribe');
    assert.ok(approved('carol@localhost', '1002@cti.localhost'));
    await watched('1002');
    event('1002', ringing('c2', '1002', '1001'));
    await waitUntil(
      () => shownTo(xmpp.sent, 'carol@localhost', '1002@cti.localhost').at(-1) === 'Ringing (from 1001)',
      3000,
      'carol sees the number on 1002',
    );
  });

  it('the older shareNumbers option still shares numbers with everyone, unless sharing is given', async (t) => {
    const { phone } = await phoneSetup(t, { shareNumbers: true });
    assert.equal(phone.sharing.level('1001', 'bob@localhost'), 'numbers');
    const { phone: other } = await phoneSetup(t, { shareNumbers: true, sharing: { default: 'state' } });
    assert.equal(other.sharing.level('1001', 'bob@localhost'), 'state');
  });

  it('a subscriber who may see nothing does not keep the phone watched; sharing again starts it', async (t) => {
    const { phone, presence, say, waitMessage, xmpp, watched } = await phoneSetup(t);
    say('alice@localhost/x', 'share bob none');
    await waitMessage('alice@localhost/x', /^bob@localhost now sees none/);
    presence('bob@localhost/x', '1001@cti.localhost', 'subscribe');
    const toBob = () =>
      xmpp.sent.filter((s) => s.attr('to') === 'bob@localhost' && s.attr('from') === '1001@cti.localhost');
    assert.deepEqual(
      toBob().map((s) => s.attr('type')),
      ['subscribed', 'unavailable', 'subscribe'],
    );
    assert.equal(toBob()[1]!.getChild('status'), undefined);
    assert.deepEqual(phone.watchedExtensions, []);
    say('alice@localhost/x', 'share bob state');
    await waitMessage('alice@localhost/x', /^bob@localhost now sees state/);
    assert.deepEqual(phone.watchedExtensions, ['1001']);
    await watched('1001');
    assert.equal(toBob().at(-1)!.getChildText('status'), 'Idle');
  });

  it('share: clear answers for bad words, unknown contacts, oneself, strangers and users without a phone', async (t) => {
    const { say, waitMessage, phone } = await phoneSetup(t);
    const ask = async (body: string, answer: RegExp) => {
      const to = `alice@localhost/${body.replace(/\W/g, '')}`;
      say(to, body);
      await waitMessage(to, answer);
    };
    await ask('share bob', /^Say "share <contact> none\|state\|numbers"/);
    await ask('share bob everything', /^Say "share <contact>/);
    await ask('share nobody state', /^I do not know who "nobody" is/);
    await ask('share alice numbers', /^That is you: you always see your own phone in full\.$/);
    await ask('share 1001@cti.localhost none', /^That is you/);
    await ask('share 1002 numbers', /^bob@localhost now sees numbers/);
    await ask('share xmpp:carol@localhost/phone none', /^carol@localhost now sees none/);
    await ask('share eve@elsewhere.example state', /^eve@elsewhere\.example may not see phones here/);
    await ask('share dave@localhost numbers', /^dave@localhost now sees numbers/);
    await ask('share @@ numbers', /^I do not know who "@@" is/);
    await ask('help', /share <contact> none\|state\|numbers/);
    assert.deepEqual(phone.sharing.settingsFor('1001'), [
      ['bob@localhost', 'numbers'],
      ['carol@localhost', 'none'],
      ['dave@localhost', 'numbers'],
    ]);
    say('mallory@evil.example/x', 'share bob numbers');
    await waitMessage('mallory@evil.example/x', /^You have no phone here/);
  });
});
