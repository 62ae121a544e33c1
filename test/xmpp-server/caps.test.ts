/** XEP-0115 verification strings (§5.1) against the worked examples of §5.2 and §5.3, and the tracker. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Element, parseDocument } from '../../src/xml/index.ts';
import { NS } from '../../src/xmpp/ns.ts';
import { CAPS_NS, CapsTracker, capsHash, readCaps, verificationString } from '../../src/xmpp-server/caps.ts';

const SIMPLE = `<query xmlns='http://jabber.org/protocol/disco#info'>
  <identity category='client' name='Exodus 0.9.1' type='pc'/>
  <feature var='http://jabber.org/protocol/disco#info'/>
  <feature var='http://jabber.org/protocol/caps'/>
  <feature var='http://jabber.org/protocol/muc'/>
  <feature var='http://jabber.org/protocol/disco#items'/>
</query>`;

const COMPLEX = `<query xmlns='http://jabber.org/protocol/disco#info' node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>
  <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
  <identity xml:lang='el' category='client' name='&#936; 0.11' type='pc'/>
  <feature var='http://jabber.org/protocol/caps'/>
  <feature var='http://jabber.org/protocol/disco#info'/>
  <feature var='http://jabber.org/protocol/disco#items'/>
  <feature var='http://jabber.org/protocol/muc'/>
  <x xmlns='jabber:x:data' type='result'>
    <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>
    <field var='ip_version' type='text-multi'><value>ipv6</value><value>ipv4</value></field>
    <field var='software'><value>Psi</value></field>
    <field var='os'><value>Mac</value></field>
    <field var='os_version'><value>10.5.1</value></field>
    <field var='software_version'><value>0.11</value></field>
  </x>
</query>`;

test('XEP-0115 §5.2 simple example: S and ver QgayPKawpkPSDYmwT/WM94uAlu0=', () => {
  const s = verificationString(parseDocument(SIMPLE));
  assert.equal(
    s,
    'client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<' +
      'http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<',
  );
  assert.equal(capsHash(s!, 'sha-1'), 'QgayPKawpkPSDYmwT/WM94uAlu0=');
});

test('XEP-0115 §5.3 complex example (two languages, a data form): ver q07IKJEyjvHSyhy//CH0CxmKi8w=', () => {
  const s = verificationString(parseDocument(COMPLEX));
  assert.equal(
    s,
    'client/pc/el/Ψ 0.11<client/pc/en/Psi 0.11<http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<' +
      'http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<urn:xmpp:dataforms:softwareinfo<' +
      'ip_version<ipv4<ipv6<os<Mac<os_version<10.5.1<software<Psi<software_version<0.11<',
  );
  assert.equal(capsHash(s!, 'sha-1'), 'q07IKJEyjvHSyhy//CH0CxmKi8w=');
});

test('§5.4: duplicate identities, features or FORM_TYPEs make the answer ill-formed; a form without hidden FORM_TYPE is ignored', () => {
  const dupFeature = parseDocument(
    `<query xmlns='${NS.discoInfo}'><identity category='client' type='pc'/><feature var='a'/><feature var='a'/></query>`,
  );
  assert.equal(verificationString(dupFeature), undefined);
  const dupIdentity = parseDocument(
    `<query xmlns='${NS.discoInfo}'><identity category='client' type='pc'/><identity category='client' type='pc'/></query>`,
  );
  assert.equal(verificationString(dupIdentity), undefined);
  const form = (type: string) =>
    `<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='${type}'><value>urn:x</value></field><field var='f'><value>v</value></field></x>`;
  const dupForm = parseDocument(`<query xmlns='${NS.discoInfo}'>${form('hidden')}${form('hidden')}</query>`);
  assert.equal(verificationString(dupForm), undefined);
  const notHidden = parseDocument(
    `<query xmlns='${NS.discoInfo}'><feature var='a'/>${form('text-single')}</query>`,
  );
  assert.equal(verificationString(notHidden), 'a<');
  assert.equal(capsHash('x', 'sha-3-nope'), undefined);
  assert.equal(capsHash('', 'SHA-256'), '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
});

test('the verification string does not depend on the order of identities, features and fields', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.string({ minLength: 1, maxLength: 8 }), { maxLength: 6 }),
      fc.uniqueArray(fc.string({ minLength: 1, maxLength: 8 }), { maxLength: 4 }),
      fc.integer(),
      (features, categories, seed) => {
        const build = (order: (a: string[]) => string[]) => {
          const q = new Element('query', NS.discoInfo);
          for (const c of order(categories)) q.c('identity', { category: c, type: 't' });
          for (const f of order(features)) q.c('feature', { var: f });
          return q;
        };
        const shuffle = (a: string[]) => {
          const copy = [...a];
          let r = seed;
          for (let i = copy.length - 1; i > 0; i--) {
            r = (r * 1103515245 + 12345) & 0x7fffffff;
            const j = r % (i + 1);
            [copy[i], copy[j]] = [copy[j]!, copy[i]!];
          }
          return copy;
        };
        assert.equal(verificationString(build((a) => a)), verificationString(build(shuffle)));
      },
    ),
  );
});

function capsPresence(
  ver: string,
  hash: string | undefined = 'sha-1',
  node = 'http://example.org/client',
): Element {
  const p = new Element('presence', NS.client);
  p.c('c', { hash, node, ver }, CAPS_NS);
  return p;
}

function discoAnswer(request: Element, features: string[], identity = 'client/pc'): Element {
  const [category, type] = identity.split('/');
  const answer = new Element('iq', NS.client, {
    type: 'result',
    id: request.attr('id'),
    from: request.attr('to'),
    to: request.attr('from'),
  });
  const q = answer.c('query', { node: request.getChild('query')?.attr('node') }, NS.discoInfo);
  q.c('identity', { category, type });
  for (const f of features) q.c('feature', { var: f });
  return answer;
}

test('tracker: asks once per ver, verifies the sha-1 hash and caches it for other resources; mismatch stays per resource', (t) => {
  const sent: Element[] = [];
  const resolved: string[] = [];
  const caps = new CapsTracker({
    domain: 'localhost',
    send: (s) => sent.push(s),
    onResolved: (j) => resolved.push(j),
  });
  t.after(() => caps.close());
  const features = ['http://jabber.org/protocol/disco#info', 'http://jabber.org/protocol/tune+notify'];
  const q = new Element('query', NS.discoInfo);
  q.c('identity', { category: 'client', type: 'pc' });
  for (const f of features) q.c('feature', { var: f });
  const ver = capsHash(verificationString(q)!, 'sha-1')!;

  assert.equal(caps.observe('bob@localhost/a', capsPresence(ver)), false);
  assert.equal(sent.length, 1);
  const request = sent[0]!;
  assert.equal(request.attr('to'), 'bob@localhost/a');
  assert.equal(request.attr('from'), 'localhost');
  assert.equal(request.getChild('query', NS.discoInfo)?.attr('node'), `http://example.org/client#${ver}`);
  // An answer from someone else with the same id is not taken.
  const spoof = discoAnswer(request, features);
  spoof.setAttr('from', 'mallory@localhost/x');
  assert.equal(caps.handleResponse(spoof), false);
  assert.equal(caps.handleResponse(discoAnswer(request, features)), true);
  assert.deepEqual(resolved, ['bob@localhost/a']);
  assert.equal(caps.wantsNotify('bob@localhost/a', 'http://jabber.org/protocol/tune'), true);
  assert.equal(caps.wantsNotify('bob@localhost/a', 'http://jabber.org/protocol/geoloc'), false);
  assert.equal(caps.cachedVers, 1);
  // Same ver from another resource: known at once, no request.
  assert.equal(caps.observe('carol@localhost/b', capsPresence(ver)), true);
  assert.equal(sent.length, 1);
  assert.equal(caps.wantsNotify('carol@localhost/b', 'http://jabber.org/protocol/tune'), true);

  // A ver that does not match what the resource answers: features for that resource only, not cached.
  assert.equal(caps.observe('eve@localhost/c', capsPresence('bogusverAAAAAAAAAAAAAAAAAAA=')), false);
  caps.handleResponse(discoAnswer(sent[1]!, ['http://jabber.org/protocol/geoloc+notify']));
  assert.equal(caps.wantsNotify('eve@localhost/c', 'http://jabber.org/protocol/geoloc'), true);
  assert.equal(caps.cachedVers, 1);
  assert.equal(caps.observe('dave@localhost/d', capsPresence('bogusverAAAAAAAAAAAAAAAAAAA=')), false);
  assert.equal(sent.length, 3, 'an unverified ver is asked again');
  // Unknown hash and legacy caps (no hash): asked, never cached.
  caps.observe('f@localhost/e', capsPresence('abc', 'sha3-999'));
  caps.handleResponse(discoAnswer(sent[3]!, ['x+notify']));
  caps.observe('g@localhost/e', capsPresence('abc', undefined));
  caps.handleResponse(discoAnswer(sent[4]!, ['x+notify']));
  assert.equal(caps.wantsNotify('f@localhost/e', 'x'), true);
  assert.equal(caps.wantsNotify('g@localhost/e', 'x'), true);
  assert.equal(caps.cachedVers, 1);
  // Forgotten resources lose their features; an error answer means "no features".
  caps.forget('bob@localhost/a');
  assert.equal(caps.features('bob@localhost/a'), undefined);
  caps.observe('h@localhost/e', capsPresence('zzz'));
  const err = new Element('iq', NS.client, { type: 'error', id: sent[5]!.attr('id'), from: 'h@localhost/e' });
  assert.equal(caps.handleResponse(err), true);
  assert.equal(caps.features('h@localhost/e')?.size, 0);
  // A presence without caps clears what was known.
  caps.observe('carol@localhost/b', new Element('presence', NS.client));
  assert.equal(caps.features('carol@localhost/b'), undefined);
  assert.equal(readCaps(capsPresence('', 'sha-1')), undefined);
});

test('tracker: the verified cache is bounded (least recently used goes first)', (t) => {
  const sent: Element[] = [];
  const caps = new CapsTracker({
    domain: 'localhost',
    send: (s) => sent.push(s),
    onResolved: () => {},
    cacheSize: 3,
  });
  t.after(() => caps.close());
  for (let i = 0; i < 10; i++) {
    const q = new Element('query', NS.discoInfo);
    q.c('identity', { category: 'client', type: 'pc' });
    q.c('feature', { var: `f${i}` });
    const ver = capsHash(verificationString(q)!, 'sha-1')!;
    caps.observe(`u${i}@localhost/r`, capsPresence(ver));
    assert.equal(caps.handleResponse(discoAnswer(sent[sent.length - 1]!, [`f${i}`])), true);
  }
  assert.equal(caps.cachedVers, 3);
});
