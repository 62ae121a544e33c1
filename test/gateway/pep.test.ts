/**
 * Phone state as PEP (issue 9 item 2, pep.ts) against a scripted text server: the XEP-0356 privilege
 * message and disco#info answers decide the mode, which is logged once; the stanzas sent are checked
 * byte for byte; failures fall back to presence-only without retries; a reconnect starts over.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import fc from 'fast-check';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import type { CstaMessage } from '../../src/csta/index.ts';
import { COMPONENT_NS } from '../../src/gateway/component.ts';
import type { PhonePresence } from '../../src/gateway/device-state.ts';
import {
  activityPayload,
  chooseMode,
  coarseStateOf,
  type Grants,
  PepPublisher,
  parsePrivilege,
} from '../../src/gateway/pep.ts';
import { PhoneService } from '../../src/gateway/phone.ts';
import { type Element, parseDocument, serialize } from '../../src/xml/index.ts';
import { waitUntil } from '../helpers/net.ts';
import { FakeXmpp, setup } from './harness.ts';

const GW = 'cti.localhost';
const PUBSUB = 'http://jabber.org/protocol/pubsub';

/** What the privilege message looks like from Prosody's mod_privilege (urn:xmpp:privilege:2). */
const PROSODY_GRANTS = `<message xmlns='${COMPONENT_NS}' from='localhost' to='${GW}'><privilege xmlns='urn:xmpp:privilege:2'><perm access='roster' type='get'/><perm access='message' type='outgoing'/><perm access='iq'><namespace ns='${PUBSUB}' type='set'/></perm></privilege></message>`;
/** And from ejabberd 23.01's mod_privilege (urn:xmpp:privilege:1, no iq permission). */
const EJABBERD_GRANTS = `<message xmlns='${COMPONENT_NS}' from='localhost' to='${GW}'><privilege xmlns='urn:xmpp:privilege:1'><perm access='message' type='outgoing'/><perm access='roster' type='get'/><perm access='presence' type='none'/></privilege></message>`;

class RecordingLog {
  readonly lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  debug(obj: object, msg = '') {
    this.lines.push({ level: 'debug', obj: obj as Record<string, unknown>, msg });
  }
  info(obj: object, msg = '') {
    this.lines.push({ level: 'info', obj: obj as Record<string, unknown>, msg });
  }
  warn(obj: object, msg = '') {
    this.lines.push({ level: 'warn', obj: obj as Record<string, unknown>, msg });
  }
  modeLines() {
    return this.lines.filter((l) => l.level === 'info' && l.obj.pepMode !== undefined);
  }
  warnings() {
    return this.lines.filter((l) => l.level === 'warn');
  }
}

const xml = (s: string) => parseDocument(s);
const wire = (el: Element) => serialize(el, COMPONENT_NS);

function make(
  t: TestContext,
  options: { setting?: 'auto' | 'off'; timeoutMs?: number; probeUser?: string } = {},
) {
  const xmpp = new FakeXmpp();
  const log = new RecordingLog();
  const pep = new PepPublisher({
    jid: GW,
    serverDomain: 'localhost',
    xmpp,
    log,
    timeoutMs: options.timeoutMs ?? 2000,
    ...(options.setting === undefined ? {} : { setting: options.setting }),
    ...(options.probeUser === undefined ? {} : { probeUser: options.probeUser }),
  });
  t.after(() => pep.close());
  /** Plays the server: answers the disco#info queries (server domain with or without PEP). */
  const answerDisco = (serverPep: boolean) => {
    for (const q of xmpp.sent.filter((s) => s.name === 'iq' && s.attr('id')?.startsWith('pepdisco'))) {
      const to = q.attr('to')!;
      const identity =
        to === 'localhost'
          ? `<identity category='server' type='im'/>${serverPep ? "<identity category='pubsub' type='pep'/>" : ''}`
          : '';
      const reply =
        to === 'localhost'
          ? `<iq xmlns='${COMPONENT_NS}' type='result' id='${q.attr('id')}' from='${to}' to='${GW}'><query xmlns='http://jabber.org/protocol/disco#info'>${identity}</query></iq>`
          : `<iq xmlns='${COMPONENT_NS}' type='error' id='${q.attr('id')}' from='${to}' to='${GW}'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`;
      assert.equal(pep.handleStanza(xml(reply)), true);
    }
  };
  const publishes = () =>
    xmpp.sent.filter((s) => s.name === 'iq' && s.getChild('privileged_iq') !== undefined);
  const answer = (iq: Element, innerError?: string) => {
    const from = iq.attr('to')!;
    const id = iq.attr('id')!;
    const reply = innerError
      ? `<iq xmlns='${COMPONENT_NS}' type='error' id='${id}' from='${from}' to='${GW}'><error type='auth'><${innerError} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`
      : `<iq xmlns='${COMPONENT_NS}' type='result' id='${id}' from='${from}' to='${GW}'><privilege xmlns='urn:xmpp:privilege:2'><forwarded xmlns='urn:xmpp:forward:0'><iq xmlns='jabber:client' type='result' id='${id}' from='${from}' to='${from}'/></forwarded></privilege></iq>`;
    assert.equal(pep.handleStanza(xml(reply)), true);
  };
  return { xmpp, log, pep, answerDisco, publishes, answer };
}

const talking: PhonePresence = {
  available: true,
  show: 'dnd',
  status: 'On the phone',
  detailedStatus: 'On the phone (with 1002)',
};
const ringing: PhonePresence = {
  available: true,
  show: 'dnd',
  status: 'Ringing',
  detailedStatus: 'Ringing (from 1002)',
};
const held: PhonePresence = {
  available: true,
  show: 'dnd',
  status: 'On hold',
  detailedStatus: 'On hold (with 1002)',
};
const idle: PhonePresence = { available: true, show: undefined, status: 'Idle', detailedStatus: 'Idle' };

describe('XEP-0356 privileges and the mode choice', () => {
  it('reads Prosody’s privilege:2 message with the iq permission, and ejabberd 23’s privilege:1 message', () => {
    const p = parsePrivilege(xml(PROSODY_GRANTS).getChild('privilege')!)!;
    assert.equal(p.ns, 'urn:xmpp:privilege:2');
    assert.deepEqual([p.roster, p.message, p.presence], ['get', 'outgoing', 'none']);
    assert.deepEqual([...p.iq], [[PUBSUB, 'set']]);
    const e = parsePrivilege(xml(EJABBERD_GRANTS).getChild('privilege')!)!;
    assert.equal(e.ns, 'urn:xmpp:privilege:1');
    assert.deepEqual([e.roster, e.message, e.presence, e.iq.size], ['get', 'outgoing', 'none', 0]);
  });

  it('ignores what it does not know: other namespaces, perms without attributes, iq in privilege:1', () => {
    assert.equal(parsePrivilege(xml("<privilege xmlns='urn:example'/>")), undefined);
    const odd = parsePrivilege(
      xml(
        `<privilege xmlns='urn:xmpp:privilege:1'><perm/><perm access='iq'><namespace ns='${PUBSUB}' type='set'/></perm><perm access='x' type='y'/></privilege>`,
      ),
    )!;
    assert.deepEqual([odd.roster, odd.message, odd.iq.size], ['none', 'none', 0]);
  });

  it('never throws on arbitrary privilege contents (property)', () => {
    const attr = fc.oneof(
      fc.constantFrom('roster', 'message', 'presence', 'iq', 'get', 'set', ''),
      fc.string(),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(attr, attr, attr), { maxLength: 8 }), (perms) => {
        const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/'/g, '&apos;').replace(/</g, '&lt;');
        const body = perms
          .map(
            ([a, b, c]) =>
              `<perm access='${esc(a)}' type='${esc(b)}'><namespace ns='${esc(c)}' type='${esc(b)}'/></perm>`,
          )
          .join('');
        let el: Element;
        try {
          el = xml(`<privilege xmlns='urn:xmpp:privilege:2'>${body}</privilege>`);
        } catch {
          return; // not XML at all (control characters): the stream reader drops it before us
        }
        const g = parsePrivilege(el)!;
        const choice = chooseMode({
          setting: 'auto',
          grants: g,
          pepAdvertised: undefined,
          failure: undefined,
        });
        assert.ok(['pep-iq', 'pep-message', 'presence-only'].includes(choice.mode));
      }),
    );
  });

  const grants = (over: Partial<Grants>): Grants => ({
    ns: 'urn:xmpp:privilege:2',
    roster: 'none',
    message: 'none',
    presence: 'none',
    iq: new Map(),
    ...over,
  });
  const choose = (g: Grants | undefined, extra: { setting?: 'auto' | 'off'; failure?: string } = {}) =>
    chooseMode({ setting: extra.setting ?? 'auto', grants: g, pepAdvertised: true, failure: extra.failure })
      .mode;

  it('pep-iq needs the iq permission to set pubsub; pep-message needs message outgoing and roster get', () => {
    assert.equal(choose(grants({ iq: new Map([[PUBSUB, 'set']]) })), 'pep-iq');
    assert.equal(choose(grants({ iq: new Map([[PUBSUB, 'both']]) })), 'pep-iq');
    assert.equal(choose(grants({ iq: new Map([[PUBSUB, 'get']]) })), 'presence-only');
    assert.equal(choose(grants({ iq: new Map([['jabber:iq:roster', 'set']]) })), 'presence-only');
    assert.equal(choose(grants({ message: 'outgoing', roster: 'get' })), 'pep-message');
    assert.equal(choose(grants({ message: 'outgoing', roster: 'both' })), 'pep-message');
    assert.equal(choose(grants({ message: 'outgoing', roster: 'set' })), 'presence-only');
    assert.equal(choose(grants({ message: 'outgoing' })), 'presence-only');
    assert.equal(choose(grants({ roster: 'both' })), 'presence-only');
    assert.equal(choose(undefined), 'presence-only');
    // Both granted: the server's own PEP service is better (caps filtering, last item on login).
    assert.equal(
      choose(grants({ message: 'outgoing', roster: 'get', iq: new Map([[PUBSUB, 'set']]) })),
      'pep-iq',
    );
    assert.equal(choose(grants({ iq: new Map([[PUBSUB, 'set']]) }), { setting: 'off' }), 'presence-only');
    assert.equal(choose(grants({ iq: new Map([[PUBSUB, 'set']]) }), { failure: 'x' }), 'presence-only');
  });

  it('coarse state: ringing, talking (also dialling), held, and none for idle, DND, forwarding, unregistered', () => {
    assert.equal(coarseStateOf(ringing), 'ringing');
    assert.equal(coarseStateOf(talking), 'talking');
    assert.equal(coarseStateOf(held), 'held');
    assert.equal(coarseStateOf(idle), 'none');
    assert.equal(coarseStateOf(undefined), 'none');
    assert.equal(
      coarseStateOf({
        available: true,
        show: 'xa',
        status: 'Do not disturb',
        detailedStatus: 'Do not disturb',
      }),
      'none',
    );
    assert.equal(
      coarseStateOf({ available: false, show: undefined, status: 'Not registered', detailedStatus: '' }),
      'none',
    );
  });

  it('XEP-0108 payloads: talking/on_the_phone with the state as text, and empty to stop', () => {
    const ns = "xmlns='http://jabber.org/protocol/activity'";
    assert.equal(
      serialize(activityPayload('talking')),
      `<activity ${ns}><talking><on_the_phone/></talking><text xml:lang='en'>On the phone</text></activity>`,
    );
    assert.equal(serialize(activityPayload('ringing')).includes('>Ringing</text>'), true);
    assert.equal(serialize(activityPayload('held')).includes('>On hold</text>'), true);
    assert.equal(serialize(activityPayload('none')), `<activity ${ns}/>`);
  });
});

describe('PEP publisher against a scripted server', () => {
  it('pep-iq (Prosody grants): disco#info to the server and a user, one log line, the exact privileged publish', async (t) => {
    const { xmpp, log, pep, answerDisco, publishes, answer } = make(t, { probeUser: 'alice@localhost' });
    pep.onOnline();
    const disco = xmpp.sent.filter((s) => s.name === 'iq');
    assert.deepEqual(
      disco.map((s) => [s.attr('type'), s.attr('to'), s.getChild('query')?.ns]),
      [
        ['get', 'localhost', 'http://jabber.org/protocol/disco#info'],
        ['get', 'alice@localhost', 'http://jabber.org/protocol/disco#info'],
      ],
    );
    assert.equal(pep.handleStanza(xml(PROSODY_GRANTS)), true);
    assert.equal(pep.mode, 'presence-only', 'not chosen before the disco answers');
    answerDisco(false);
    assert.equal(pep.mode, 'pep-iq');
    assert.equal(log.modeLines().length, 1);
    assert.match(log.modeLines()[0]!.msg, /^phone state for contacts: pep-iq \(iq permission for/);

    pep.phoneState('alice@localhost', talking);
    assert.equal(publishes().length, 1);
    const sent = publishes()[0]!;
    const id = sent.attr('id')!;
    assert.equal(
      wire(sent),
      `<iq type='set' id='${id}' from='cti.localhost' to='alice@localhost'><privileged_iq xmlns='urn:xmpp:privilege:2'><iq xmlns='jabber:client' type='set' id='${id}' from='alice@localhost' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='http://jabber.org/protocol/activity'><item id='current'><activity xmlns='http://jabber.org/protocol/activity'><talking><on_the_phone/></talking><text xml:lang='en'>On the phone</text></activity></item></publish></pubsub></iq></privileged_iq></iq>`,
    );
    assert.doesNotMatch(wire(sent), /1002/, 'no number in PEP');
    // The same coarse state again (another CSTA event, a number that changed): nothing more.
    pep.phoneState('alice@localhost', { ...talking, detailedStatus: 'On the phone (with 1003)' });
    assert.equal(publishes().length, 1);
    // Changes while a publish is in flight wait for its answer; only the latest is published.
    pep.phoneState('alice@localhost', held);
    pep.phoneState('alice@localhost', idle);
    assert.equal(publishes().length, 1);
    answer(sent);
    assert.equal(publishes().length, 2);
    assert.match(
      wire(publishes()[1]!),
      /<item id='current'><activity xmlns='http:\/\/jabber.org\/protocol\/activity'\/><\/item>/,
    );
    answer(publishes()[1]!);
    assert.equal(pep.counters.published, 2);
    // An idle user who was never on the phone is not published at all.
    pep.phoneState('bob@localhost', idle);
    assert.equal(publishes().length, 2);
    assert.equal(log.warnings().length, 0);
  });

  it('waits for the privilege message when it comes after the disco answers, and upgrades when it comes late', async (t) => {
    const { log, pep, answerDisco } = make(t, { timeoutMs: 50 });
    pep.onOnline();
    answerDisco(true);
    assert.equal(log.modeLines().length, 0, 'the disco answers alone decide nothing yet');
    await waitUntil(() => log.modeLines().length === 1, 2000, 'decision after the timeout');
    assert.equal(pep.mode, 'presence-only');
    assert.match(log.modeLines()[0]!.msg, /granted no XEP-0356 privileges/);
    pep.handleStanza(xml(PROSODY_GRANTS));
    assert.equal(pep.mode, 'pep-iq');
    assert.equal(log.modeLines().length, 2);
    assert.match(log.modeLines()[1]!.msg, /the server advertises PEP/);
  });

  it('[gateway] pep = "off": no disco, presence-only, said once', (t) => {
    const { xmpp, log, pep } = make(t, { setting: 'off' });
    pep.onOnline();
    pep.handleStanza(xml(PROSODY_GRANTS));
    pep.phoneState('alice@localhost', talking);
    assert.equal(xmpp.sent.length, 0);
    assert.equal(pep.mode, 'presence-only');
    assert.equal(log.modeLines().length, 1);
    assert.match(log.modeLines()[0]!.msg, /presence-only \(\[gateway\] pep = "off"\)/);
  });

  it('a privilege message from anyone but the text server is ignored', (t) => {
    const { pep, answerDisco } = make(t);
    pep.onOnline();
    answerDisco(true);
    assert.equal(
      pep.handleStanza(xml(PROSODY_GRANTS.replace("from='localhost'", "from='mallory@localhost'"))),
      true,
    );
    assert.equal(
      pep.handleStanza(xml(PROSODY_GRANTS.replace("from='localhost'", "from='evil.example'"))),
      true,
    );
    assert.equal(pep.mode, 'presence-only');
    // Stanzas that are not about PEP go on to the rest of the gateway.
    assert.equal(
      pep.handleStanza(
        xml(`<message xmlns='${COMPONENT_NS}' from='a@localhost/x' to='${GW}'><body>hi</body></message>`),
      ),
      false,
    );
    assert.equal(
      pep.handleStanza(xml(`<iq xmlns='${COMPONENT_NS}' type='result' id='ev1' from='a@localhost/x'/>`)),
      false,
    );
  });

  it('pep-message (ejabberd 23 grants): roster get, then one forwarded headline per contact with a subscription', async (t) => {
    const { xmpp, log, pep, answerDisco } = make(t);
    pep.onOnline();
    pep.handleStanza(xml(EJABBERD_GRANTS));
    answerDisco(false);
    assert.equal(pep.mode, 'pep-message');
    assert.match(log.modeLines()[0]!.msg, /^phone state for contacts: pep-message \(no iq permission/);
    pep.phoneState('alice@localhost', ringing);
    const rosterGet = xmpp.sent.at(-1)!;
    assert.equal(
      wire(rosterGet),
      `<iq type='get' id='${rosterGet.attr('id')}' from='cti.localhost' to='alice@localhost'><query xmlns='jabber:iq:roster'/></iq>`,
    );
    const before = xmpp.sent.length;
    pep.handleStanza(
      xml(
        `<iq xmlns='${COMPONENT_NS}' type='result' id='${rosterGet.attr('id')}' from='alice@localhost' to='${GW}'><query xmlns='jabber:iq:roster'>` +
          "<item jid='bob@localhost' subscription='both'/><item jid='carol@localhost' subscription='from'/>" +
          "<item jid='dave@localhost' subscription='to'/><item jid='erin@localhost' subscription='none' ask='subscribe'/>" +
          "<item jid='1001@cti.localhost' subscription='from'/><item jid='x@localhost/res' subscription='both'/>" +
          '</query></iq>',
      ),
    );
    const messages = xmpp.sent.slice(before);
    const inner = (m: Element) => m.getChild('privilege')!.getChild('forwarded')!.getChild('message')!;
    assert.deepEqual(
      messages.map((m) => inner(m).attr('to')),
      ['alice@localhost', 'bob@localhost', 'carol@localhost'],
    );
    const first = messages[1]!;
    const id = first.attr('id')!;
    assert.equal(
      wire(first),
      `<message from='cti.localhost' to='localhost' id='${id}'><privilege xmlns='urn:xmpp:privilege:1'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='alice@localhost' to='bob@localhost' type='headline' id='${id}'><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='http://jabber.org/protocol/activity'><item id='current'><activity xmlns='http://jabber.org/protocol/activity'><talking><on_the_phone/></talking><text xml:lang='en'>Ringing</text></activity></item></items></event></message></forwarded></privilege></message>`,
    );
    assert.equal(pep.counters.published, 1);
    // A bounce of one of our notifications (the server took the permission away): presence-only.
    pep.handleStanza(
      xml(
        `<message xmlns='${COMPONENT_NS}' type='error' id='${id}' from='localhost' to='${GW}'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Insufficient privilege</text></error></message>`,
      ),
    );
    assert.equal(pep.mode, 'presence-only');
    assert.equal(log.warnings().length, 1);
    assert.match(log.warnings()[0]!.msg, /forbidden \(Insufficient privilege\)/);
    const count = xmpp.sent.length;
    pep.phoneState('alice@localhost', talking);
    assert.equal(xmpp.sent.length, count, 'nothing more is sent');
  });

  it('forbidden (or service-unavailable, or a timeout) stops PEP for everyone: logged once, no retries', async (t) => {
    for (const condition of ['forbidden', 'service-unavailable', 'timeout']) {
      const { log, pep, answerDisco, publishes, answer } = make(t, { timeoutMs: 100 });
      pep.onOnline();
      pep.handleStanza(xml(PROSODY_GRANTS));
      answerDisco(true);
      pep.phoneState('alice@localhost', talking);
      if (condition === 'timeout') await waitUntil(() => pep.mode === 'presence-only', 2000, 'timeout');
      else answer(publishes()[0]!, condition);
      assert.equal(pep.mode, 'presence-only', condition);
      pep.phoneState('bob@localhost', ringing);
      pep.phoneState('alice@localhost', held);
      pep.phoneState('alice@localhost', idle);
      assert.equal(publishes().length, 1, `${condition}: no retry, no other user`);
      assert.equal(log.warnings().length, 1, `${condition}: one warning`);
      assert.equal(log.modeLines().at(-1)!.obj.pepMode, 'presence-only');
      assert.equal(pep.counters.failed, 1);
      pep.close();
    }
  });

  it('an error that concerns one user stops PEP for that user only', (t) => {
    const { log, pep, answerDisco, publishes, answer } = make(t);
    pep.onOnline();
    pep.handleStanza(xml(PROSODY_GRANTS));
    answerDisco(true);
    pep.phoneState('alice@localhost', talking);
    answer(publishes()[0]!, 'internal-server-error');
    assert.equal(pep.mode, 'pep-iq');
    pep.phoneState('alice@localhost', idle);
    assert.equal(publishes().length, 1, 'not for alice any more');
    pep.phoneState('bob@localhost', talking);
    assert.equal(publishes().length, 2);
    assert.equal(publishes()[1]!.attr('to'), 'bob@localhost');
    assert.equal(log.warnings().length, 1);
    assert.match(log.warnings()[0]!.msg, /for alice@localhost; presence-only for this user/);
  });

  it('an error inside the forwarded answer counts as a failed publish', (t) => {
    const { pep, answerDisco, publishes } = make(t);
    pep.onOnline();
    pep.handleStanza(xml(PROSODY_GRANTS));
    answerDisco(true);
    pep.phoneState('alice@localhost', talking);
    const id = publishes()[0]!.attr('id');
    pep.handleStanza(
      xml(
        `<iq xmlns='${COMPONENT_NS}' type='result' id='${id}' from='alice@localhost' to='${GW}'><privilege xmlns='urn:xmpp:privilege:2'><forwarded xmlns='urn:xmpp:forward:0'><iq xmlns='jabber:client' type='error' id='${id}'><error type='cancel'><feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq></forwarded></privilege></iq>`,
      ),
    );
    assert.equal(pep.mode, 'presence-only');
    assert.equal(pep.counters.failed, 1);
  });

  it('reconnect: presence-only while down, disco again, failures forgotten, the state changed meanwhile published', (t) => {
    const { xmpp, log, pep, answerDisco, publishes, answer } = make(t);
    pep.onOnline();
    pep.handleStanza(xml(PROSODY_GRANTS));
    answerDisco(true);
    pep.phoneState('alice@localhost', talking);
    answer(publishes()[0]!);
    pep.phoneState('bob@localhost', talking);
    answer(publishes()[1]!, 'forbidden');
    assert.equal(pep.mode, 'presence-only');

    pep.onOffline();
    xmpp.online = false;
    pep.phoneState('alice@localhost', idle); // the call ends while the link is down
    xmpp.online = true;
    xmpp.sent.length = 0;
    pep.onOnline();
    assert.equal(xmpp.sent.filter((s) => s.attr('id')?.startsWith('pepdisco')).length, 1);
    pep.handleStanza(xml(PROSODY_GRANTS));
    answerDisco(true);
    assert.equal(pep.mode, 'pep-iq');
    // alice's contacts were told "on the phone" before: now they are told it stopped; bob gets his again.
    assert.deepEqual(
      publishes().map((p) => [p.attr('to'), /<activity[^>]*\/>/.test(wire(p)) ? 'none' : 'talking']),
      [
        ['alice@localhost', 'none'],
        ['bob@localhost', 'talking'],
      ],
    );
    assert.deepEqual(
      log.modeLines().map((l) => l.obj.pepMode),
      ['pep-iq', 'presence-only', 'pep-iq'],
    );
  });
});

describe('PEP from the phone service: one publish per change of state, not per CSTA event', () => {
  it('Delivered, Established, Held, Retrieved, ConnectionCleared → ringing, talking, held, talking, none', async (t) => {
    const env = await setup(t, { grants: [{ jid: 'alice@localhost', devices: ['1001'] }] });
    const { xmpp, log, pep, answerDisco, publishes, answer } = make(t);
    pep.onOnline();
    pep.handleStanza(xml(PROSODY_GRANTS));
    answerDisco(true);
    const phone = new PhoneService({
      gateway: env.gateway,
      xmpp: env.xmpp,
      jid: GW,
      users: [{ jid: 'alice@localhost', name: 'alice', extension: '1001' }],
      onPhoneState: (owner, presence) => pep.phoneState(owner.jid, presence),
      log,
    });
    t.after(() => phone.close());
    // alice comes online (directed presence): her phone is watched.
    phone.handleStanza(xml(`<presence xmlns='${COMPONENT_NS}' from='alice@localhost/laptop' to='${GW}'/>`));
    await waitUntil(() => env.pbx.xrefFor('1001') !== undefined, 3000, 'monitor of 1001');
    const xref = env.pbx.xrefFor('1001')!;
    const dev = (d: string) => ({ deviceIdentifier: d });
    const conn = { callID: 'c1', deviceID: '1001' };
    const events: Record<string, unknown>[] = [
      {
        name: 'DeliveredEvent',
        connection: conn,
        alertingDevice: dev('1001'),
        callingDevice: dev('1002'),
        calledDevice: dev('1001'),
        lastRedirectionDevice: { notKnown: true },
        localConnectionInfo: 'alerting',
      },
      {
        name: 'EstablishedEvent',
        establishedConnection: conn,
        answeringDevice: dev('1001'),
        callingDevice: dev('1002'),
        calledDevice: dev('1001'),
        lastRedirectionDevice: { notKnown: true },
        localConnectionInfo: 'connected',
      },
      { name: 'HeldEvent', heldConnection: conn, holdingDevice: dev('1001'), localConnectionInfo: 'hold' },
      {
        name: 'RetrievedEvent',
        retrievedConnection: conn,
        retrievingDevice: dev('1001'),
        localConnectionInfo: 'connected',
      },
      {
        name: 'ConnectionClearedEvent',
        droppedConnection: { callID: 'c1', deviceID: '1002' },
        releasingDevice: dev('1002'),
        localConnectionInfo: 'connected',
      },
      {
        name: 'ConnectionClearedEvent',
        droppedConnection: conn,
        releasingDevice: dev('1001'),
        localConnectionInfo: 'null',
      },
    ];
    // Publishes expected after each event; the other party's ConnectionCleared changes nothing.
    const counts = [1, 2, 3, 4, 4, 5];
    let answered = 0;
    for (const [i, e] of events.entries()) {
      env.pbx.connection!.sendEvent({ monitorCrossRefID: xref, cause: 'newCall', ...e } as CstaMessage);
      if (i > 0 && counts[i] === counts[i - 1]) continue;
      await waitUntil(() => publishes().length === counts[i], 3000, `publish after ${String(e.name)}`);
      while (answered < publishes().length) answer(publishes()[answered++]!);
    }
    const texts = publishes().map((p) => /<text[^>]*>([^<]*)<\/text>/.exec(wire(p))?.[1]);
    assert.deepEqual(texts, ['Ringing', 'On the phone', 'On hold', 'On the phone', undefined]);
    assert.equal(xmpp.sent.filter((s) => /1002/.test(wire(s))).length, 0, 'no number in any PEP stanza');

    // alice goes offline while on a new call: the phone is no longer watched, "stopped" is published.
    env.pbx.connection!.sendEvent({ monitorCrossRefID: xref, cause: 'newCall', ...events[0] } as CstaMessage);
    await waitUntil(() => publishes().length === 6, 3000, 'ringing again');
    answer(publishes()[5]!);
    phone.handleStanza(
      xml(`<presence xmlns='${COMPONENT_NS}' type='unavailable' from='alice@localhost/laptop' to='${GW}'/>`),
    );
    assert.equal(publishes().length, 7);
    assert.match(wire(publishes()[6]!), /<activity xmlns='http:\/\/jabber.org\/protocol\/activity'\/>/);
  });
});

describe("PEP and the administrator's sharing level", () => {
  it('a device shared with nobody ([gateway] sharing_devices = none) is never published as PEP', async (t) => {
    const env = await setup(t, {
      grants: [
        { jid: 'alice@localhost', devices: ['1001'] },
        { jid: 'bob@localhost', devices: ['1002'] },
      ],
    });
    const { pep, answerDisco, publishes, log } = make(t);
    pep.onOnline();
    pep.handleStanza(xml(PROSODY_GRANTS));
    answerDisco(true);
    const phone = new PhoneService({
      gateway: env.gateway,
      xmpp: env.xmpp,
      jid: GW,
      users: [
        { jid: 'alice@localhost', name: 'alice', extension: '1001' },
        { jid: 'bob@localhost', name: 'bob', extension: '1002' },
      ],
      sharing: { default: 'state', devices: { '1001': 'none' } },
      onPhoneState: (owner, presence) => pep.phoneState(owner.jid, presence),
      log,
    });
    t.after(() => phone.close());
    for (const who of ['alice', 'bob']) {
      phone.handleStanza(
        xml(`<presence xmlns='${COMPONENT_NS}' from='${who}@localhost/laptop' to='${GW}'/>`),
      );
    }
    await waitUntil(
      () => env.pbx.xrefFor('1001') !== undefined && env.pbx.xrefFor('1002') !== undefined,
      3000,
      'monitors of 1001 and 1002',
    );
    const delivered = (device: string) =>
      ({
        name: 'DeliveredEvent',
        monitorCrossRefID: env.pbx.xrefFor(device)!,
        cause: 'newCall',
        connection: { callID: `c-${device}`, deviceID: device },
        alertingDevice: { deviceIdentifier: device },
        callingDevice: { deviceIdentifier: '1003' },
        calledDevice: { deviceIdentifier: device },
        lastRedirectionDevice: { notKnown: true },
        localConnectionInfo: 'alerting',
      }) as CstaMessage;
    // alice's phone rings first, bob's after it on the same link: once bob's publish is out, alice's
    // would have been too.
    env.pbx.connection!.sendEvent(delivered('1001'));
    env.pbx.connection!.sendEvent(delivered('1002'));
    await waitUntil(() => publishes().length >= 1, 3000, "bob's publish");
    assert.deepEqual(
      publishes().map((p) => p.getChild('privileged_iq')?.getChild('iq')?.attr('from')),
      ['bob@localhost'],
    );
  });
});

describe('PEP configuration and hostile input', () => {
  it('[gateway] pep is "auto" by default, "off" when set, and nothing else', () => {
    assert.equal(loadConfig({ env: {} }).gateway.pep, 'auto');
    assert.equal(loadConfig({ env: { SWITCHBOARD_GATEWAY_PEP: 'off' } }).gateway.pep, 'off');
    assert.throws(
      () => loadConfig({ env: { SWITCHBOARD_GATEWAY_PEP: 'always' } }),
      (e: unknown) => e instanceof ConfigError && /^config: gateway\.pep: /.test(e.message),
    );
  });

  it('odd answers and bounces are handled without throwing and without publishing to strangers', (t) => {
    const { xmpp, pep, answerDisco, log } = make(t);
    pep.onOnline();
    pep.handleStanza(xml(EJABBERD_GRANTS));
    answerDisco(false);
    const odd = [
      `<iq xmlns='${COMPONENT_NS}' type='error' id='nope' from='localhost'/>`,
      `<iq xmlns='${COMPONENT_NS}' type='result' from='localhost'/>`,
      `<message xmlns='${COMPONENT_NS}' type='error' id='unknown' from='localhost'><error/></message>`,
      `<message xmlns='${COMPONENT_NS}' from='localhost'><privilege xmlns='urn:xmpp:privilege:2'><perm/><perm access='iq'><namespace/></perm></privilege></message>`,
      `<presence xmlns='${COMPONENT_NS}' from='localhost'/>`,
    ];
    for (const s of odd) pep.handleStanza(xml(s));
    // The last message replaced the grants with nothing usable: presence-only, said once more.
    assert.equal(pep.mode, 'presence-only');
    pep.handleStanza(xml(EJABBERD_GRANTS));
    assert.equal(pep.mode, 'pep-message');
    pep.phoneState('Alice@Localhost', talking);
    const rosterGet = xmpp.sent.at(-1)!;
    const before = xmpp.sent.length;
    // A roster answer with no query, from the wrong JID, and junk items: only alice herself is told.
    pep.handleStanza(
      xml(
        `<iq xmlns='${COMPONENT_NS}' type='result' id='${rosterGet.attr('id')}' from='alice@localhost'><query xmlns='jabber:iq:roster'><item/><item subscription='both'/><item jid='' subscription='from'/><item jid='cti.localhost' subscription='both'/></query></iq>`,
      ),
    );
    const recipients = xmpp.sent
      .slice(before)
      .map((m) => m.getChild('privilege')!.getChild('forwarded')!.getChild('message')!.attr('to'));
    assert.deepEqual(recipients, ['alice@localhost']);
    assert.equal(log.warnings().length, 0);
  });
});
