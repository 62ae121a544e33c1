import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type Element,
  parseDocument,
  serialize,
  XmlError,
  type XmlLimits,
  XmlStreamReader,
} from '../../src/xml/index.ts';

const STREAMS_NS = 'http://etherx.jabber.org/streams';
const HEADER =
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

interface Recorded {
  starts: Element[];
  stanzas: Element[];
  ends: number;
  errors: XmlError[];
  reader: XmlStreamReader;
  /** Bytes handed to feed() before the error was reported (or in total). */
  fedBeforeError: number;
}

function record(limits: Partial<XmlLimits> = {}): Recorded {
  const rec: Recorded = {
    starts: [],
    stanzas: [],
    ends: 0,
    errors: [],
    fedBeforeError: 0,
    reader: undefined as unknown as XmlStreamReader,
  };
  rec.reader = new XmlStreamReader(
    {
      onStreamStart: (e) => rec.starts.push(e),
      onStanza: (e) => rec.stanzas.push(e),
      onStreamEnd: () => {
        rec.ends++;
      },
      onError: (e) => rec.errors.push(e),
    },
    { limits, root: { name: 'stream', ns: STREAMS_NS } },
  );
  return rec;
}

/** Feeds `data` in chunks of `size` bytes, stopping as soon as the reader has failed. */
function feedChunked(rec: Recorded, data: Buffer, size: number): void {
  for (let i = 0; i < data.length && !rec.reader.isFailed; i += size) {
    const chunk = data.subarray(i, i + size);
    rec.reader.feed(chunk);
    if (!rec.reader.isFailed) rec.fedBeforeError += chunk.length;
  }
}

function streamOf(body: string): Buffer {
  return Buffer.from(HEADER + body, 'utf8');
}

function expectError(rec: Recorded, condition: string): void {
  assert.equal(
    rec.errors.length,
    1,
    `expected one error, got ${rec.errors.map((e) => e.message).join('; ')}`,
  );
  assert.ok(rec.errors[0] instanceof XmlError);
  assert.equal(rec.errors[0].condition, condition, rec.errors[0].message);
}

describe('XmlStreamReader: normal streams', () => {
  it('reports stream start, stanzas and stream end', () => {
    const rec = record();
    rec.reader.feed(
      streamOf("<message to='bob@localhost'><body>hi</body></message><iq id='1'/></stream:stream>"),
    );
    assert.equal(rec.errors.length, 0);
    assert.equal(rec.starts.length, 1);
    assert.equal(rec.starts[0]!.attrs.to, 'localhost');
    assert.equal(rec.starts[0]!.children.length, 0);
    assert.deepEqual(
      rec.stanzas.map((s) => serialize(s, 'jabber:client')),
      ["<message to='bob@localhost'><body>hi</body></message>", "<iq id='1'/>"],
    );
    assert.equal(rec.stanzas[0]!.ns, 'jabber:client');
    assert.equal(rec.ends, 1);
  });

  it('decodes a multibyte character split at every byte position', () => {
    const text = 'héllo € 😀 ✓';
    const data = streamOf(`<message><body>${text}</body></message>`);
    for (let split = 1; split < data.length; split++) {
      const rec = record();
      rec.reader.feed(data.subarray(0, split));
      rec.reader.feed(data.subarray(split));
      assert.equal(rec.errors.length, 0, `split at ${split}`);
      assert.equal(rec.stanzas[0]?.getChildText('body'), text, `split at ${split}`);
    }
  });

  it('gives the same stanzas whatever the chunking (property)', () => {
    const stanzas = [
      "<message to='a@b' type='chat'><body>€ &amp; &lt;tag&gt; 😀</body></message>",
      '<presence><show>dnd</show><status>On the phone</status></presence>',
      "<iq type='set' id='x1'><MakeCall xmlns='http://www.ecma-international.org/standards/ecma-323/csta/ed4'><callingDevice>1001</callingDevice><calledDirectoryNumber>1002</calledDirectoryNumber></MakeCall></iq>",
    ];
    const data = streamOf(`${stanzas.join(' \n ')}</stream:stream>`);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: data.length }), { maxLength: 20 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const rec = record();
        let from = 0;
        for (const p of [...points, data.length]) {
          rec.reader.feed(data.subarray(from, p));
          from = p;
        }
        assert.equal(rec.errors.length, 0);
        assert.deepEqual(
          rec.stanzas.map((s) => serialize(s, 'jabber:client')),
          stanzas,
        );
        assert.equal(rec.ends, 1);
      }),
      { numRuns: 300 },
    );
  });

  it('accepts whitespace keep-alives between stanzas without buffering them', () => {
    const rec = record({ maxStanzaBytes: 200, maxBufferedBytes: 300 });
    rec.reader.feed(streamOf('<iq id="1"/>'));
    // 10,000 single-space keep-alives: far more than the buffer limit, never an error.
    for (let i = 0; i < 10_000; i++) rec.reader.feed(' ');
    rec.reader.feed('<iq id="2"/>');
    assert.equal(rec.errors.length, 0);
    assert.equal(rec.stanzas.length, 2);
  });

  it('counts the stanza limit in bytes, not characters', () => {
    // 100 three-byte characters = 300 bytes of text.
    const body = `<message><body>${'€'.repeat(100)}</body></message>`;
    const ok = record({ maxStanzaBytes: Buffer.byteLength(body) });
    ok.reader.feed(streamOf(body + body));
    assert.equal(ok.errors.length, 0);
    assert.equal(ok.stanzas.length, 2);
    const tooSmall = record({ maxStanzaBytes: Buffer.byteLength(body) - 1 });
    tooSmall.reader.feed(streamOf(body));
    expectError(tooSmall, 'policy-violation');
  });

  it('reset() discards input already buffered (STARTTLS injection defence)', () => {
    let reader!: XmlStreamReader;
    const seen: string[] = [];
    reader = new XmlStreamReader({
      onStreamStart: () => seen.push('start'),
      onStanza: (e) => {
        seen.push(e.name);
        if (e.name === 'starttls') reader.reset();
      },
      onStreamEnd: () => seen.push('end'),
      onError: (e) => seen.push(`error:${e.condition}`),
    });
    // The plaintext after <starttls/> must never be processed as if it came over TLS.
    reader.feed(
      Buffer.from(`${HEADER}<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><iq id='injected'/>`),
    );
    assert.deepEqual(seen, ['start', 'starttls']);
    reader.feed(Buffer.from(`${HEADER}<iq id='after'/>`));
    assert.deepEqual(seen, ['start', 'starttls', 'start', 'iq']);
  });

  it('setLimits() raises the stanza limit after authentication', () => {
    const rec = record({ maxStanzaBytes: 100, maxBufferedBytes: 200 });
    rec.reader.feed(streamOf('<iq id="1"/>'));
    rec.reader.setLimits({ maxStanzaBytes: 10_000, maxBufferedBytes: 20_000 });
    rec.reader.feed(`<message><body>${'x'.repeat(5000)}</body></message>`);
    assert.equal(rec.errors.length, 0);
    assert.equal(rec.stanzas.length, 2);
  });
});

// perf-reliability.md §7 A: one test per hostile XML input; exact condition; bounded work.
describe('XmlStreamReader: hostile input', () => {
  const BILLION_LAUGHS =
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><lolz>&lol3;</lolz>';

  it('billion laughs before the stream header → restricted-xml', () => {
    const rec = record();
    rec.reader.feed(BILLION_LAUGHS);
    expectError(rec, 'restricted-xml');
  });

  it('DOCTYPE after the stream header → restricted-xml (saxes refuses it; never expanded)', () => {
    const rec = record();
    rec.reader.feed(streamOf('<!DOCTYPE x [<!ENTITY a "b">]><message>&a;</message>'));
    assert.equal(rec.errors.length, 1);
    assert.ok(['restricted-xml', 'not-well-formed'].includes(rec.errors[0]!.condition));
    assert.equal(rec.stanzas.length, 0);
  });

  it('quadratic blow-up (one large entity referenced many times) → restricted-xml', () => {
    const big = 'a'.repeat(50_000);
    const rec = record({ maxBufferedBytes: 1 << 20 });
    rec.reader.feed(
      `<?xml version="1.0"?><!DOCTYPE kaboom [<!ENTITY a "${big}">]><kaboom>${'&a;'.repeat(1000)}</kaboom>`,
    );
    expectError(rec, 'restricted-xml');
  });

  it('external entity (SYSTEM) → restricted-xml', () => {
    const rec = record();
    rec.reader.feed('<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>');
    expectError(rec, 'restricted-xml');
  });

  it('comment inside the stream → restricted-xml', () => {
    const rec = record();
    rec.reader.feed(streamOf('<message><!-- hi --></message>'));
    expectError(rec, 'restricted-xml');
  });

  it('processing instruction inside the stream → restricted-xml', () => {
    const rec = record();
    rec.reader.feed(streamOf('<message><?php evil() ?></message>'));
    expectError(rec, 'restricted-xml');
  });

  it('second XML declaration → restricted-xml', () => {
    const rec = record();
    rec.reader.feed(streamOf("<?xml version='1.0'?><message/>"));
    expectError(rec, 'restricted-xml');
  });

  it('non-UTF-8 encoding declaration → unsupported-encoding', () => {
    const rec = record();
    rec.reader.feed(
      "<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams'>",
    );
    expectError(rec, 'unsupported-encoding');
  });

  for (const [label, ref] of [
    ['undefined entity', '&foo;'],
    ['character reference to NUL', '&#0;'],
    ['character reference to a surrogate', '&#xD800;'],
    ['character reference to U+FFFE', '&#xFFFE;'],
  ] as const) {
    it(`${label} → not-well-formed, no throw`, () => {
      const rec = record();
      assert.doesNotThrow(() => rec.reader.feed(streamOf(`<message><body>${ref}</body></message>`)));
      expectError(rec, 'not-well-formed');
    });
  }

  for (const [label, bytes] of [
    ['bad continuation byte', [0xc3, 0x28]],
    ['overlong encoding of /', [0xc0, 0xaf]],
    ['encoded surrogate', [0xed, 0xa0, 0x80]],
    ['stray continuation byte', [0x80]],
    ['5-byte sequence', [0xf8, 0x88, 0x80, 0x80, 0x80]],
  ] as const) {
    it(`invalid UTF-8 (${label}) → not-well-formed`, () => {
      const rec = record();
      rec.reader.feed(
        Buffer.concat([streamOf('<message><body>'), Buffer.from(bytes), Buffer.from('</body></message>')]),
      );
      expectError(rec, 'not-well-formed');
    });
  }

  for (const [label, ch] of [
    ['NUL', '\u0000'],
    ['BEL', '\u0007'],
    ['ESC', '\u001b'],
    ['form feed', '\u000c'],
  ] as const) {
    it(`${label} control character → not-well-formed`, () => {
      const rec = record();
      rec.reader.feed(streamOf(`<message><body>a${ch}b</body></message>`));
      expectError(rec, 'not-well-formed');
    });
  }

  it('oversized stanza in one write → policy-violation', () => {
    const rec = record({ maxStanzaBytes: 10 * 1024 });
    const data = streamOf(`<message><body>${'x'.repeat(100_000)}</body></message>`);
    feedChunked(rec, data, data.length);
    expectError(rec, 'policy-violation');
    assert.equal(rec.stanzas.length, 0);
  });

  it('oversized stanza trickled 1 byte at a time → policy-violation at the limit', () => {
    const limit = 10 * 1024;
    const rec = record({ maxStanzaBytes: limit });
    const data = streamOf(`<message><body>${'x'.repeat(100_000)}</body></message>`);
    feedChunked(rec, data, 1);
    expectError(rec, 'policy-violation');
    // Detected at the limit, not after reading the whole stanza.
    assert.ok(rec.fedBeforeError <= HEADER.length + limit + 1, `fed ${rec.fedBeforeError}`);
  });

  for (const chunk of [1, 64 * 1024]) {
    it(`20 MB unterminated attribute fed in ${chunk}-byte chunks → policy-violation after at most the limit`, () => {
      const limit = 256 * 1024;
      const rec = record({ maxStanzaBytes: limit, maxBufferedBytes: limit + 8192 });
      const data = Buffer.concat([streamOf("<message to='"), Buffer.alloc(20 * 1024 * 1024, 0x61)]);
      const heapBefore = process.memoryUsage().heapUsed;
      feedChunked(rec, data, chunk);
      expectError(rec, 'policy-violation');
      assert.ok(rec.fedBeforeError <= HEADER.length + limit + chunk, `fed ${rec.fedBeforeError}`);
      // The reader held at most the limit: nowhere near the 20 MB (heap growth well under 20 MB).
      assert.ok(process.memoryUsage().heapUsed - heapBefore < 16 * 1024 * 1024);
    });
  }

  it('a tag never closed with > is bounded by the same limit', () => {
    const rec = record({ maxStanzaBytes: 4096 });
    feedChunked(rec, streamOf(`<message${' '.repeat(100_000)}`), 1000);
    expectError(rec, 'policy-violation');
  });

  it('an endless stream header is bounded by the buffer limit', () => {
    const rec = record({ maxBufferedBytes: 4096 });
    const data = Buffer.from(`<stream:stream xmlns:stream='${STREAMS_NS}' to='${'x'.repeat(1_000_000)}`);
    feedChunked(rec, data, 8192);
    expectError(rec, 'policy-violation');
    assert.ok(rec.fedBeforeError <= 4096 + 8192);
  });

  it('100,000-deep nesting → policy-violation at the depth cap', () => {
    const rec = record({
      maxStanzaBytes: 10 * 1024 * 1024,
      maxBufferedBytes: 10 * 1024 * 1024,
      maxDepth: 64,
    });
    rec.reader.feed(streamOf('<a>'.repeat(100_000)));
    expectError(rec, 'policy-violation');
    assert.match(rec.errors[0]!.message, /nesting/);
  });

  it('thousands of attributes → policy-violation', () => {
    const attrs = Array.from({ length: 5000 }, (_, i) => ` a${i}='1'`).join('');
    const rec = record({ maxStanzaBytes: 1 << 20, maxBufferedBytes: 1 << 20, maxAttributes: 256 });
    rec.reader.feed(streamOf(`<message${attrs}/>`));
    expectError(rec, 'policy-violation');
  });

  it('thousands of namespace declarations → policy-violation', () => {
    const decls = Array.from({ length: 5000 }, (_, i) => ` xmlns:p${i}='urn:${i}'`).join('');
    const rec = record({ maxStanzaBytes: 1 << 20, maxBufferedBytes: 1 << 20, maxAttributes: 256 });
    rec.reader.feed(streamOf(`<message${decls}/>`));
    expectError(rec, 'policy-violation');
  });

  it('huge attribute value within the limit parses; beyond it → policy-violation', () => {
    const ok = record({ maxStanzaBytes: 200_000, maxBufferedBytes: 300_000 });
    ok.reader.feed(streamOf(`<message id='${'v'.repeat(150_000)}'/>`));
    assert.equal(ok.errors.length, 0);
    assert.equal(ok.stanzas[0]!.attr('id')!.length, 150_000);
    const bad = record({ maxStanzaBytes: 100_000, maxBufferedBytes: 300_000 });
    bad.reader.feed(streamOf(`<message id='${'v'.repeat(150_000)}'/>`));
    expectError(bad, 'policy-violation');
  });

  it('duplicate attribute → not-well-formed', () => {
    const rec = record();
    rec.reader.feed(streamOf("<message to='a' to='b'/>"));
    expectError(rec, 'not-well-formed');
  });

  it('unbound prefix → not-well-formed', () => {
    const rec = record();
    rec.reader.feed(streamOf('<foo:message/>'));
    expectError(rec, 'not-well-formed');
  });

  it('wrong stream namespace → invalid-namespace', () => {
    const rec = record();
    rec.reader.feed("<stream:stream xmlns:stream='http://example.com/not-streams' xmlns='jabber:client'>");
    expectError(rec, 'invalid-namespace');
  });

  it('mismatched tags → not-well-formed', () => {
    const rec = record();
    rec.reader.feed(streamOf('<message><body></message></body>'));
    expectError(rec, 'not-well-formed');
  });

  it('unclosed tags followed by the stream close → not-well-formed', () => {
    const rec = record();
    rec.reader.feed(streamOf('<message><body>hi</stream:stream>'));
    expectError(rec, 'not-well-formed');
  });

  it('text at stream level → bad-format', () => {
    const rec = record();
    rec.reader.feed(streamOf('hello<message/>'));
    expectError(rec, 'bad-format');
  });

  it('a second root after the stream closed → not-well-formed', () => {
    const rec = record();
    rec.reader.feed(streamOf('</stream:stream><message/>'));
    assert.equal(rec.ends, 1);
    expectError(rec, 'not-well-formed');
  });

  it('an HTTP request on the XMPP port → not-well-formed', () => {
    const rec = record();
    rec.reader.feed('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
    expectError(rec, 'not-well-formed');
  });

  it('a TLS ClientHello on the plaintext port → not-well-formed', () => {
    const rec = record();
    rec.reader.feed(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]));
    expectError(rec, 'not-well-formed');
  });

  it('valid stanzas before an error are still delivered, none after', () => {
    const rec = record();
    rec.reader.feed(streamOf("<iq id='1'/><message><!-- x --></message><iq id='2'/>"));
    assert.deepEqual(
      rec.stanzas.map((s) => s.attr('id')),
      ['1'],
    );
    expectError(rec, 'restricted-xml');
    rec.reader.feed("<iq id='3'/>");
    assert.equal(rec.stanzas.length, 1);
    assert.equal(rec.errors.length, 1);
  });

  it('an exception thrown by a handler propagates and leaves no parser half-way', () => {
    const reader = new XmlStreamReader({
      onStreamStart() {},
      onStanza() {
        throw new Error('application bug');
      },
      onStreamEnd() {},
      onError() {},
    });
    assert.throws(() => reader.feed(streamOf('<iq/>')), /application bug/);
  });
});

describe('parseDocument', () => {
  const CSTA = 'http://www.ecma-international.org/standards/ecma-323/csta/ed4';

  it('parses a CSTA event with an XML declaration', () => {
    const doc = parseDocument(
      `<?xml version="1.0" encoding="UTF-8"?><DeliveredEvent xmlns="${CSTA}"><monitorCrossRefID>42</monitorCrossRefID></DeliveredEvent>`,
    );
    assert.equal(doc.name, 'DeliveredEvent');
    assert.equal(doc.ns, CSTA);
    assert.equal(doc.getChildText('monitorCrossRefID'), '42');
  });

  it('accepts bytes and rejects invalid UTF-8', () => {
    assert.equal(parseDocument(Buffer.from('<a>€</a>')).text(), '€');
    assert.throws(() => parseDocument(Buffer.from([0x3c, 0x61, 0x3e, 0xff, 0x3c, 0x2f, 0x61, 0x3e])), {
      condition: 'not-well-formed',
    });
  });

  const cases: [string, string, string][] = [
    ['unclosed tags', '<a><b></a>', 'not-well-formed'],
    ['unterminated document', '<a><b>', 'not-well-formed'],
    ['second root', '<a/><b/>', 'not-well-formed'],
    ['text after root', '<a/>junk', 'not-well-formed'],
    ['empty document', '', 'not-well-formed'],
    ['DOCTYPE', '<!DOCTYPE a><a/>', 'restricted-xml'],
    ['comment', '<a><!-- c --></a>', 'restricted-xml'],
    ['processing instruction', '<a><?pi x?></a>', 'restricted-xml'],
    ['undefined entity', '<a>&nbsp;</a>', 'not-well-formed'],
    ['NUL', '<a>\u0000</a>', 'not-well-formed'],
    ['non-UTF-8 encoding', '<?xml version="1.0" encoding="UTF-16"?><a/>', 'unsupported-encoding'],
  ];
  for (const [label, input, condition] of cases) {
    it(`${label} → ${condition}`, () => {
      assert.throws(
        () => parseDocument(input),
        (e: unknown) => e instanceof XmlError && e.condition === condition,
      );
    });
  }

  it('enforces size before parsing and depth while parsing', () => {
    assert.throws(() => parseDocument(`<a>${'x'.repeat(2000)}</a>`, { limits: { maxStanzaBytes: 1000 } }), {
      condition: 'policy-violation',
    });
    assert.throws(() => parseDocument('<a>'.repeat(100_000), { limits: { maxStanzaBytes: 1 << 20 } }), {
      condition: 'policy-violation',
    });
    const deep64 = `${'<a>'.repeat(64)}${'</a>'.repeat(64)}`;
    assert.equal(parseDocument(deep64, { limits: { maxDepth: 64 } }).name, 'a');
    assert.throws(() => parseDocument(`<b>${deep64}</b>`, { limits: { maxDepth: 64 } }), {
      condition: 'policy-violation',
    });
  });

  it('a prefixed root keeps its namespace and local name', () => {
    const doc = parseDocument(
      `<csta:MonitorStart xmlns:csta="${CSTA}"><csta:monitorObject/></csta:MonitorStart>`,
    );
    assert.equal(doc.name, 'MonitorStart');
    assert.equal(doc.ns, CSTA);
    assert.equal(doc.getChild('monitorObject')?.ns, CSTA);
  });
});
