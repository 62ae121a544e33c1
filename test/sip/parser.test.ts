/**
 * Message layer: RFC 4475 torture messages, RFC 5118 IPv6 forms, compact and folded headers, Content-Length
 * rules, serialization round trips, and hostile input (every failure is a typed SipParseError).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_SIP_LIMITS, SipParseError } from '../../src/sip/errors.ts';
import { SipRequest, SipResponse } from '../../src/sip/message.ts';
import { parseMessage, SipMessageError } from '../../src/sip/parser.ts';
import { isSipUri, parseNameAddr, parseUri, unescapeUri } from '../../src/sip/uri.ts';
import {
  APPLICATION,
  crlf,
  INVALID,
  IPV6_INVALID,
  IPV6_VALID,
  MPART01,
  MPART01_BODY,
  MPART01_SMIME,
  VALID,
} from './fixtures/rfc4475.ts';

function request(text: string | Buffer): SipRequest {
  const m = parseMessage(text);
  assert.ok(m instanceof SipRequest);
  return m;
}

describe('RFC 4475 valid messages parse', () => {
  for (const [name, text] of Object.entries(VALID)) {
    it(name, () => {
      const m = parseMessage(text);
      m.validateCore();
      assert.ok(m.vias.length >= 1);
    });
  }

  it('wsinv: folding, compact forms, LWS around separators, multi-value Via', () => {
    const m = request(VALID.wsinv!);
    assert.equal(m.method, 'INVITE');
    assert.equal(m.to.params.get('tag'), '1918181833n');
    assert.equal(m.from.displayName, 'J Rosenberg \\"');
    assert.equal(m.from.params.get('tag'), '98asjd8');
    assert.equal(m.maxForwards, 68);
    assert.deepEqual(m.cseq, { seq: 9, method: 'INVITE' });
    assert.equal(m.vias.length, 3);
    assert.equal(m.vias[1]!.transport, 'TCP');
    assert.equal(m.vias[1]!.host, 'spindle.example.com');
    assert.equal(m.vias[2]!.params.get('branch'), 'z9hG4bK30239');
    assert.equal(m.get('Subject'), '');
    assert.equal(m.get('NewFangledHeader'), 'newfangled value continued newfangled value');
    const contact = m.contacts[0];
    assert.ok(contact !== undefined && contact !== '*');
    assert.equal(contact.displayName, 'Quoted string ""');
    assert.equal(contact.params.get('q'), '0.33');
    assert.equal(contact.params.get('newparam'), 'newvalue');
    assert.equal(m.body.length, 150);
  });

  it('intmeth: unusual method, user, password, quoted control characters', () => {
    const m = request(VALID.intmeth!);
    assert.equal(m.method, "!interesting-Method0123456789_*+`.%indeed'~");
    assert.ok(isSipUri(m.uri));
    assert.equal(m.uri.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
    assert.equal(m.to.displayName, 'BEL:\x07 NUL:\x00 DEL:\x7f');
    assert.equal(m.from.displayName, "token1~` token2'+_ token3*%!.-");
    assert.equal(m.from.params.get('tag'), "_token~1'+`*%!-.");
    assert.equal(m.cseq.method, m.method);
    assert.equal(m.maxForwards, 255);
  });

  it('esc01: escaped user parts compare unescaped', () => {
    const m = request(VALID.esc01!);
    assert.ok(isSipUri(m.uri) && isSipUri(m.to.uri));
    assert.equal(unescapeUri(m.uri.user!), 'sips:user@example.com');
    assert.equal(unescapeUri(m.to.uri.user!), 'user');
    assert.equal(m.get('Content-Type'), 'application/sdp');
  });

  it('esc02: a % that is not an escape, in method and display name', () => {
    const m = request(VALID.esc02!);
    assert.equal(m.method, 'RE%47IST%45R');
    assert.equal(m.to.displayName, '%Z%45');
    assert.equal(m.contacts.length, 2, 'C%6Fntact is an unknown header, not Contact');
  });

  it('dblreq: bytes after Content-Length in a datagram are ignored', () => {
    const m = request(VALID.dblreq!);
    assert.equal(m.method, 'REGISTER');
    assert.equal(m.body.length, 0);
  });

  it('longreq: 34 Via values across many spellings', () => {
    const m = request(VALID.longreq!);
    assert.equal(m.vias.length, 34);
    assert.equal(m.vias[33]!.params.get('received'), '192.0.2.5');
  });

  it('semiuri: ; in the user part', () => {
    const m = request(VALID.semiuri!);
    assert.ok(isSipUri(m.uri));
    assert.equal(m.uri.user, 'user;par=u%40example.net');
    assert.equal(m.uri.host, 'example.com');
    assert.equal(m.getAll('Accept').length, 6);
  });

  it('transports and reason phrases', () => {
    assert.deepEqual(
      request(VALID.transports!).vias.map((v) => v.transport),
      ['UDP', 'SCTP', 'TLS', 'UNKNOWN', 'TCP'],
    );
    const unreason = parseMessage(VALID.unreason!);
    assert.ok(unreason instanceof SipResponse);
    assert.equal(unreason.status, 200);
    const noreason = parseMessage(VALID.noreason!);
    assert.ok(noreason instanceof SipResponse);
    assert.equal(noreason.reason, '');
  });
});

describe('RFC 4475 mpart01: multipart MIME body with a binary part', () => {
  it('the fixture is self-consistent: DER length prefix and Content-Length match the bytes typed in', () => {
    assert.equal(MPART01_SMIME.length, 342);
    assert.equal(MPART01_SMIME.readUInt16BE(2) + 4, MPART01_SMIME.length);
    assert.equal(MPART01_BODY.length, 553);
    assert.ok(MPART01_SMIME.includes(0x00) && MPART01_SMIME.includes(0x0d) && MPART01_SMIME.includes(0x0a));
  });

  it('parses from bytes; the body is the 553 Content-Length bytes with the binary part intact', () => {
    const m = request(MPART01);
    m.validateCore();
    assert.equal(m.method, 'MESSAGE');
    assert.equal(m.cseq.method, 'MESSAGE');
    assert.equal(m.get('Content-Length'), '553');
    assert.equal(m.get('Content-Type'), 'multipart/mixed;boundary=7a9cbec02ceef655');
    assert.equal(m.get('Identity')?.length, 172);
    assert.equal(m.body.length, 553);
    assert.ok(m.body.equals(MPART01_BODY));
    const partStart =
      m.body.indexOf('\r\n\r\n', m.body.indexOf('Content-Type: application/octet-stream')) + 4;
    assert.ok(m.body.subarray(partStart, partStart + 342).equals(MPART01_SMIME));
    assert.equal(m.body.subarray(partStart + 342).toString(), '\r\n--7a9cbec02ceef655--\r\n');
  });

  it('serializes back to the same bytes', () => {
    const again = request(request(MPART01).serialize());
    assert.ok(again.body.equals(MPART01_BODY));
    assert.ok(request(MPART01).serialize().equals(MPART01));
  });

  it('a datagram cut inside the binary part is rejected (body shorter than Content-Length), not truncated', () => {
    for (const cut of [1, 200, 300]) {
      assert.throws(
        () => parseMessage(MPART01.subarray(0, MPART01.length - cut)),
        (e: unknown) => e instanceof SipMessageError && e.status === 400,
      );
    }
  });
});

describe('RFC 4475 application-layer messages parse (answered by the stack)', () => {
  for (const [name, { message }] of Object.entries(APPLICATION)) {
    it(name, () => {
      parseMessage(message).validateCore();
    });
  }
  it('unknown schemes are kept opaque', () => {
    const m = request(APPLICATION.unksm2!.message);
    assert.equal(m.to.uri.scheme, 'isbn');
    assert.equal(isSipUri(m.from.uri), false);
    const novelsc = request(APPLICATION.novelsc!.message);
    assert.equal(novelsc.uri.scheme, 'soap.beep');
  });
  it('inv2543: no Max-Forwards, no branch, body to the end of the datagram', () => {
    const m = request(APPLICATION.inv2543!.message);
    assert.equal(m.maxForwards, undefined);
    assert.equal(m.via.params.get('branch'), undefined);
    assert.ok(m.body.toString().startsWith('v=0'));
  });
});

describe('RFC 4475 invalid messages are rejected with a typed error', () => {
  for (const [name, { message, status }] of Object.entries(INVALID)) {
    it(`${name} -> ${status}`, () => {
      assert.throws(
        () => parseMessage(message),
        (e: unknown) => {
          assert.ok(e instanceof SipMessageError, String(e));
          if (status !== 'drop') {
            assert.equal(e.status, status, e.message);
            assert.equal(e.partial?.isRequest, true);
          } else assert.equal(e.partial?.isRequest, false);
          return true;
        },
      );
    });
  }
});

describe('RFC 5118 IPv6', () => {
  for (const [name, text] of Object.entries(IPV6_VALID)) {
    it(`${name} parses`, () => parseMessage(text).validateCore());
  }
  for (const [name, text] of Object.entries(IPV6_INVALID)) {
    it(`${name} is rejected`, () => assert.throws(() => parseMessage(text), SipParseError));
  }
  it('port ambiguity: [2001:db8::10:5070] has no port, [2001:db8::10]:5070 has one', () => {
    const a = request(IPV6_VALID['port-ambiguous']!).uri;
    const b = request(IPV6_VALID['port-unambiguous']!).uri;
    assert.ok(isSipUri(a) && isSipUri(b));
    assert.equal(a.host, '[2001:db8::10:5070]');
    assert.equal(a.port, undefined);
    assert.equal(b.host, '[2001:db8::10]');
    assert.equal(b.port, 5070);
  });
});

describe('URIs and name-addr', () => {
  it('parses and formats sip URIs with params and headers', () => {
    const u = parseUri('sip:alice:pw@example.com:5070;transport=tcp;lr?subject=x');
    assert.ok(isSipUri(u));
    assert.equal(u.user, 'alice');
    assert.equal(u.port, 5070);
    assert.equal(u.params.get('transport'), 'tcp');
    assert.equal(u.params.get('lr'), null);
    assert.equal(u.headers, 'subject=x');
  });
  it('rejects broken URIs', () => {
    for (const bad of [
      'sip:',
      'sip:@',
      'sip:a@b:99999',
      'sip:[::1',
      'sip:a b@c',
      'sip:a@b;;',
      ':x',
      'sip:a@-b-',
    ]) {
      assert.throws(() => parseUri(bad), SipParseError, bad);
    }
  });
  it('name-addr with and without display names', () => {
    assert.equal(parseNameAddr('Alice <sip:a@b>;tag=1').displayName, 'Alice');
    assert.equal(parseNameAddr('<sip:a@b;lr>').params.size, 0);
    assert.equal(parseNameAddr('sip:a@b;tag=1').params.get('tag'), '1');
  });
});

describe('framing rules for datagrams', () => {
  const base = crlf(`OPTIONS sip:u@example.com SIP/2.0
Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1
To: <sip:u@example.com>
From: <sip:c@example.com>;tag=1
Call-ID: x1
CSeq: 1 OPTIONS
Max-Forwards: 70
`);
  it('accepts a datagram without Content-Length and takes the rest as body', () => {
    const m = parseMessage(`${base}\r\nhello`);
    assert.equal(m.body.toString(), 'hello');
  });
  it('accepts a datagram ending after the last header without a blank line', () => {
    assert.ok(parseMessage(base));
  });
  it('accepts duplicate Content-Length with the same value', () => {
    assert.equal(parseMessage(`${base}Content-Length: 2\r\nl: 2\r\n\r\nhi`).body.toString(), 'hi');
  });
  it('ignores CRLFs before the start line (§7.5)', () => {
    assert.ok(parseMessage(`\r\n\r\n${base}\r\n`));
  });
  it('rejects a header line without a colon, and continuation before any header', () => {
    assert.throws(() => parseMessage(`${base}Foobar roobar\r\n\r\n`), SipParseError);
    assert.throws(() => parseMessage(`OPTIONS sip:a@b SIP/2.0\r\n folded\r\n\r\n`), SipParseError);
  });
});

describe('serializer', () => {
  it('round-trips every valid torture message to an equivalent message', () => {
    for (const text of [...Object.values(VALID), ...Object.values(IPV6_VALID)]) {
      const a = parseMessage(text);
      const b = parseMessage(a.serialize());
      assert.deepEqual(
        b.vias.map((v) => [v.transport, v.host, v.port, [...v.params]]),
        a.vias.map((v) => [v.transport, v.host, v.port, [...v.params]]),
      );
      assert.equal(b.callId, a.callId);
      assert.deepEqual(b.cseq, a.cseq);
      assert.deepEqual(b.body, a.body);
      assert.equal(b.headers.length, a.headers.length);
    }
  });
  it('writes Content-Length equal to the body', () => {
    const m = parseMessage(VALID.wsinv!);
    m.body = Buffer.from('abc');
    assert.match(m.toString(), /Content-Length: 3\r\n\r\nabc$/);
  });
});

describe('hostile input never escapes as anything but SipParseError', () => {
  function check(input: Buffer | string) {
    try {
      parseMessage(input);
    } catch (e) {
      if (!(e instanceof SipParseError)) throw e;
    }
  }
  it('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => check(Buffer.from(bytes))),
      { numRuns: 2000 },
    );
  });
  it('random strings built from SIP-ish pieces', () => {
    const piece = fc.constantFrom(
      'INVITE ',
      'SIP/2.0',
      'sip:',
      '@',
      ':',
      ';',
      ',',
      '<',
      '>',
      '"',
      '\\',
      '\r\n',
      ' ',
      '\t',
      'Via',
      'To',
      'From',
      'Call-ID',
      'CSeq',
      'l',
      'Content-Length',
      '[',
      ']',
      '::1',
      'branch=',
      'tag=',
      '1',
      'z9hG4bK',
      '%',
      '%00',
      '=',
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 200 }), (parts) => check(parts.join(''))),
      { numRuns: 3000 },
    );
  });
  it('mutations of valid torture messages', () => {
    const samples = Object.values(VALID);
    fc.assert(
      fc.property(fc.nat(samples.length - 1), fc.nat(), fc.integer({ min: 0, max: 255 }), (i, pos, byte) => {
        const buf = Buffer.from(samples[i]!);
        buf[pos % buf.length] = byte;
        check(buf);
        check(buf.subarray(0, pos % buf.length));
      }),
      { numRuns: 3000 },
    );
  });
  it('oversized message -> 513, too many headers -> 400, huge header section -> 513', () => {
    const big = Buffer.alloc(DEFAULT_SIP_LIMITS.maxMessageBytes + 1, 'a');
    assert.throws(
      () => parseMessage(big),
      (e: SipParseError) => e.status === 513,
    );
    const many = `OPTIONS sip:a@b SIP/2.0\r\n${'X-A: 1\r\n'.repeat(DEFAULT_SIP_LIMITS.maxHeaderCount + 1)}\r\n`;
    assert.throws(
      () => parseMessage(many),
      (e: SipParseError) => e.status === 400 && /too many/.test(e.message),
    );
    const longHeader = `OPTIONS sip:a@b SIP/2.0\r\nX-A: ${'b'.repeat(DEFAULT_SIP_LIMITS.maxHeaderBytes)}\r\n\r\n`;
    assert.throws(
      () => parseMessage(longHeader),
      (e: SipParseError) => e.status === 513,
    );
  });
  it('deeply repeated separators stay linear and typed', () => {
    check(
      `OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h${';a'.repeat(5000)}\r\nTo: ${'<'.repeat(5000)}\r\n\r\n`,
    );
    check(`OPTIONS sip:a@b SIP/2.0\r\nContact: ${'"'.repeat(9999)}\r\n\r\n`);
  });
});

describe('setTopVia (received/rport written back by the stack)', () => {
  const text = (vias: string) =>
    `OPTIONS sip:bob@example.com SIP/2.0\r\n${vias}Max-Forwards: 70\r\nTo: <sip:bob@example.com>\r\nFrom: <sip:a@example.com>;tag=1\r\nCall-ID: v@x\r\nCSeq: 1 OPTIONS\r\n\r\n`;

  it('rewrites the top Via line in place and keeps the others and the header order', () => {
    const m = parseMessage(
      text(
        'Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa;rport\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKb\r\n',
      ),
    ) as SipRequest;
    const via = m.via;
    via.params.set('rport', '5070');
    via.params.set('received', '198.51.100.7');
    m.setTopVia(via);
    assert.deepEqual(
      m.headers.map((h) => h.name),
      ['Via', 'Via', 'Max-Forwards', 'To', 'From', 'Call-ID', 'CSeq'],
    );
    assert.equal(
      m.headers[0]!.value,
      'SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa;rport=5070;received=198.51.100.7',
    );
    assert.equal(m.headers[1]!.value, 'SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKb');
    const reparsed = parseMessage(m.serialize()) as SipRequest;
    assert.equal(reparsed.via.params.get('received'), '198.51.100.7');
    assert.equal(reparsed.vias.length, 2);
  });

  it('splits a Via line that lists several Vias, as setVias does', () => {
    const m = parseMessage(
      text('Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa, SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKb\r\n'),
    ) as SipRequest;
    const via = m.via;
    via.params.set('received', '198.51.100.7');
    m.setTopVia(via);
    assert.deepEqual(
      m.headers.filter((h) => h.name === 'Via').map((h) => h.value),
      [
        'SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa;received=198.51.100.7',
        'SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKb',
      ],
    );
  });

  it('refuses a Via that is not the message top Via', () => {
    const m = parseMessage(text('Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa\r\n')) as SipRequest;
    const other = parseMessage(text('Via: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bKc\r\n')) as SipRequest;
    assert.throws(() => m.setTopVia(other.via));
  });
});

describe('serialize with a body', () => {
  it('writes head and body into one buffer with the right Content-Length', () => {
    const m = new SipRequest('MESSAGE', parseUri('sip:bob@example.com'));
    m.append('Content-Length', '999');
    m.body = Buffer.from('héllo body', 'utf8');
    const wire = m.serialize();
    const text = wire.toString('utf8');
    assert.ok(text.endsWith('\r\n\r\nhéllo body'));
    assert.ok(text.includes(`Content-Length: ${Buffer.byteLength('héllo body')}\r\n`));
    assert.ok(!text.includes('999'));
  });
});
