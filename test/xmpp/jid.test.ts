import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  bareOf,
  escapeLocal,
  JidError,
  parseJid,
  prepDomainpart,
  tryParseJid,
  unescapeLocal,
} from '../../src/xmpp/jid.ts';

test('parses bare, full and domain JIDs (RFC 7622 §3.1)', () => {
  const full = parseJid('Juliet@Example.COM/Balcony');
  assert.equal(full.local, 'juliet');
  assert.equal(full.domain, 'example.com');
  assert.equal(full.resource, 'Balcony', 'resource keeps its case');
  assert.equal(full.toString(), 'juliet@example.com/Balcony');
  assert.equal(full.bare().toString(), 'juliet@example.com');
  const domain = parseJid('cti.localhost');
  assert.ok(domain.isDomain);
  assert.equal(parseJid('example.com/res').resource, 'res');
});

test('the first slash starts the resource, which may contain @ and /', () => {
  const jid = parseJid('a@b/c@d/e');
  assert.equal(jid.local, 'a');
  assert.equal(jid.domain, 'b');
  assert.equal(jid.resource, 'c@d/e');
  const noLocal = parseJid('b/c@d');
  assert.equal(noLocal.local, '');
  assert.equal(noLocal.resource, 'c@d');
});

test('width mapping, case mapping and NFC on the localpart', () => {
  assert.equal(parseJid('ＪＵＬＩＥＴ@example.com').local, 'juliet');
  assert.equal(parseJid('Ç@example.com').local, 'ç');
  // e + combining acute composes to é (NFC)
  assert.equal(parseJid('caf\u0065\u0301@example.com').local, 'café');
  assert.equal(parseJid('\u03C0@example.com').local, 'π');
});

test('trailing dot and ideographic full stops in the domain', () => {
  assert.equal(prepDomainpart('example.com.'), 'example.com');
  assert.equal(parseJid('a@example\u3002com').domain, 'example.com');
  assert.equal(parseJid('a@[::1]').domain, '[::1]');
  assert.equal(parseJid('a@127.0.0.1').domain, '127.0.0.1');
});

test('non-ASCII spaces in the resource become U+0020', () => {
  assert.equal(parseJid('a@b/x\u00A0y').resource, 'x y');
});

const hostile: Array<[string, string]> = [
  ['', 'empty'],
  ['@example.com', 'empty localpart'],
  ['a@', 'empty domain'],
  ['a@example.com/', 'empty resource'],
  ['a b@example.com', 'space in localpart'],
  ['a"b@example.com', 'quote in localpart'],
  ['a&b@example.com', 'ampersand'],
  ["a'b@example.com", 'apostrophe'],
  ['a:b@example.com', 'colon'],
  ['a<b@example.com', 'less-than'],
  ['a>b@example.com', 'greater-than'],
  ['a@b@example.com', 'second @ in domain'],
  ['a\u0000b@example.com', 'NUL'],
  ['a\u0007@example.com', 'control'],
  ['a@exa mple.com', 'space in domain'],
  ['a@example..com', 'empty label'],
  ['a@.', 'only a dot'],
  ['a@example.com/x\u0000', 'NUL in resource'],
  ['a@example.com/x\u200B', 'zero-width space (ignorable) in resource'],
  ['\u2163@example.com', 'roman numeral (compatibility character)'],
  ['\uFDD0@example.com', 'non-character'],
  ['\uE000@example.com', 'private use'],
  ['a\u2764@example.com', 'symbol in localpart'],
  [`${'a'.repeat(1024)}@example.com`, 'localpart over 1023 bytes'],
  [`a@${'b'.repeat(64)}.com`, 'domain label over 63'],
  [`a@example.com/${'r'.repeat(1024)}`, 'resource over 1023 bytes'],
  [`${'é'.repeat(512)}@example.com`, '1024 bytes in 512 characters'],
  ['a@[::1', 'broken IPv6 literal'],
  ['a@exa\\mple.com', 'backslash in domain'],
];

for (const [input, why] of hostile) {
  test(`refuses ${why}`, () => {
    assert.throws(() => parseJid(input), JidError);
    assert.equal(tryParseJid(input), undefined);
  });
}

test('accepts exactly 1023 bytes per part', () => {
  const jid = parseJid(`${'a'.repeat(1023)}@example.com/${'r'.repeat(1023)}`);
  assert.equal(jid.local.length, 1023);
});

test('preparation is idempotent (property)', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 40 }), fc.string({ maxLength: 20 }), (local, resource) => {
      const jid = tryParseJid(`${local}@example.com/${resource}`);
      if (jid === undefined) return;
      const again = parseJid(jid.toString());
      assert.ok(again.equals(jid), `${jid} re-parsed as ${again}`);
    }),
    { numRuns: 500 },
  );
});

test('never throws anything but JidError (property)', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (input) => {
      try {
        parseJid(input);
      } catch (e) {
        assert.ok(e instanceof JidError, String(e));
      }
    }),
    { numRuns: 1000 },
  );
});

test('XEP-0106 escaping round-trips and yields valid localparts', () => {
  const raw = 'd\'artagnan @ "paris" & <co>/x:y\\20';
  const escaped = escapeLocal(raw);
  assert.equal(escaped, 'd\\27artagnan\\20\\40\\20\\22paris\\22\\20\\26\\20\\3cco\\3e\\2fx\\3ay\\5c20');
  assert.equal(unescapeLocal(escaped), raw);
  assert.equal(parseJid(`${escaped}@example.com`).local, escaped);
});

test('bareOf cuts at the first slash only, like parseJid, and leaves the rest as it is', () => {
  assert.equal(bareOf('Alice@Localhost/laptop/x@y'), 'Alice@Localhost');
  assert.equal(bareOf('localhost'), 'localhost');
  fc.assert(
    fc.property(fc.string(), fc.string(), (bare, resource) => {
      fc.pre(!bare.includes('/'));
      return bareOf(`${bare}/${resource}`) === bare && bareOf(bare) === bare;
    }),
  );
});
