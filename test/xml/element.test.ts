import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Element, el, escapeAttr, escapeText, parseDocument, serialize } from '../../src/xml/index.ts';

describe('element model', () => {
  it('queries children by name and namespace', () => {
    const iq = el('iq', { type: 'get', id: '1' }, 'jabber:client');
    const query = iq.c('query', {}, 'http://jabber.org/protocol/disco#info');
    query.c('identity', { category: 'server' });
    iq.c('other', {}, 'urn:x').append('hello');
    assert.equal(iq.getChild('query')?.ns, 'http://jabber.org/protocol/disco#info');
    assert.equal(iq.getChild('query', 'urn:nope'), undefined);
    assert.equal(iq.getChildByNs('urn:x')?.name, 'other');
    assert.equal(iq.getChildText('other'), 'hello');
    assert.equal(iq.find('query', 'identity')?.attr('category'), 'server');
    assert.equal(iq.elements().length, 2);
    assert.equal(query.getChildren('identity').length, 1);
  });

  it('builds attributes without undefined values and clones deeply', () => {
    const m = el('message', { to: 'a@b', from: undefined });
    assert.deepEqual(Object.keys(m.attrs), ['to']);
    m.setAttr('type', 'chat').setAttr('to', undefined);
    assert.deepEqual(m.attrs, { type: 'chat' });
    const body = m.c('body').append('x');
    const copy = m.clone();
    body.append('y');
    assert.equal(copy.getChildText('body'), 'x');
  });
});

describe('serializer', () => {
  it('escapes text and attributes exactly', () => {
    assert.equal(escapeText(`a&b<c>d"e'f\r`), `a&amp;b&lt;c&gt;d"e'f&#xD;`);
    assert.equal(escapeAttr(`a&b<c>d"e'f\t\n\r`), 'a&amp;b&lt;c&gt;d&quot;e&apos;f&#x9;&#xA;&#xD;');
    assert.equal(escapeText(']]>'), ']]&gt;');
  });

  it('drops characters XML 1.0 cannot carry', () => {
    assert.equal(escapeText('a\u0000b\u0007c\uFFFEd\uD800e'), 'abcde');
    assert.equal(escapeAttr('x\u001Fy'), 'xy');
    assert.equal(escapeText('emoji 😀 ok'), 'emoji 😀 ok');
  });

  it('declares the default namespace only where it changes', () => {
    const iq = el('iq', { id: '1' }, 'jabber:client');
    iq.c('ping', {}, 'urn:xmpp:ping');
    assert.equal(serialize(iq, 'jabber:client'), "<iq id='1'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert.equal(serialize(iq), "<iq xmlns='jabber:client' id='1'><ping xmlns='urn:xmpp:ping'/></iq>");
    const child = el('a', {}, '');
    const parent = el('p', {}, 'urn:p', child);
    assert.equal(serialize(parent), "<p xmlns='urn:p'><a xmlns=''/></p>");
  });

  it('writes xml: and namespaced attributes with prefixes', () => {
    const e = el('body', { 'xml:lang': 'en', '{urn:ext}flag': '1' }, 'jabber:client');
    assert.equal(serialize(e, 'jabber:client'), "<body xml:lang='en' xmlns:ns0='urn:ext' ns0:flag='1'/>");
    const back = parseDocument(serialize(e));
    assert.deepEqual(back.attrs, { 'xml:lang': 'en', '{urn:ext}flag': '1' });
  });
});

// Round trip: any tree of the model survives serialize → parseDocument unchanged.
const NAME = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_.-]{0,8}$/).filter((n) => !/^xml/i.test(n));
const NS = fc.constantFrom(
  '',
  'jabber:client',
  'urn:a',
  'http://www.ecma-international.org/standards/ecma-323/csta/ed4',
);
const XML_CHAR = fc
  .oneof(
    fc.constantFrom('&', '<', '>', '"', "'", '\t', '\n', '\r', ' ', ']]>', '€', '😀', '\u00e9'),
    fc.string({ unit: 'grapheme', maxLength: 6 }),
  )
  .map((s) => s.replace(/[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, ''));
const TEXT = fc
  .array(XML_CHAR, { minLength: 1, maxLength: 4 })
  .map((a) => a.join(''))
  .filter((s) => s.length > 0);
const ATTRS = fc.dictionary(
  fc.oneof(
    NAME,
    fc.constant('xml:lang'),
    NAME.map((n) => `{urn:attr}${n}`),
  ),
  fc.array(XML_CHAR, { maxLength: 3 }).map((a) => a.join('')),
  { maxKeys: 4 },
);

const { tree } = fc.letrec<{ tree: Element; node: Element | string }>((tie) => ({
  tree: fc
    .record({
      name: NAME,
      ns: NS,
      attrs: ATTRS,
      children: fc.array(tie('node'), { maxLength: 4 }),
    })
    .map(({ name, ns, attrs, children }) => {
      // Adjacent text nodes are one text node once parsed: merge them in the model too.
      const merged: (Element | string)[] = [];
      for (const child of children) {
        const last = merged[merged.length - 1];
        if (typeof child === 'string' && typeof last === 'string') merged[merged.length - 1] = last + child;
        else merged.push(child);
      }
      return new Element(name, ns, attrs, merged);
    }),
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, TEXT, tie('tree')),
}));

function plain(node: Element | string): unknown {
  if (typeof node === 'string') return node;
  return { name: node.name, ns: node.ns, attrs: { ...node.attrs }, children: node.children.map(plain) };
}

describe('round trip (property)', () => {
  it('serialize then parseDocument gives the same tree', () => {
    fc.assert(
      fc.property(tree, (t) => {
        const text = serialize(t);
        // The parser normalises CR and CRLF in text to LF (XML 1.0 §2.11) unless escaped: we escape CR.
        assert.deepEqual(plain(parseDocument(text)), plain(t));
      }),
      { numRuns: 400 },
    );
  });

  it('serialization is stable: serialize(parse(serialize(t))) === serialize(t)', () => {
    fc.assert(
      fc.property(tree, (t) => {
        const once = serialize(t, 'jabber:client');
        assert.equal(serialize(parseDocument(serialize(t)), 'jabber:client'), once);
      }),
      { numRuns: 200 },
    );
  });
});
