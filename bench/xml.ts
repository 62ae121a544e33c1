/**
 * `npm run bench -- xml [--seconds N]`: throughput of the XML layer on a corpus of typical XMPP stanzas
 * and CSTA events, against bare saxes (namespace-aware, same UTF-8 decoding) in the same run.
 * Aim (issue 2): our stream reader within 1.3x of bare saxes.
 */
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { TextDecoder } from 'node:util';
import { SaxesParser } from 'saxes';
import { Element, parseDocument, XmlStreamReader } from '../src/xml/index.ts';

const CSTA = 'http://www.ecma-international.org/standards/ecma-323/csta/ed4';
const STANZAS = [
  "<message from='alice@localhost/laptop' to='bob@localhost' type='chat' id='m1' xml:lang='en'><body>Are you free for a call at 3? Café &amp; croissants on me €</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
  "<presence from='bob@localhost/desk' id='p1'><show>dnd</show><status>On the phone</status><priority>5</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://switchboard.example' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>",
  "<iq type='get' id='r1' from='alice@localhost/laptop'><query xmlns='jabber:iq:roster'/></iq>",
  `<iq type='set' id='c1' to='cti.localhost'><MakeCall xmlns='${CSTA}'><callingDevice>1001</callingDevice><calledDirectoryNumber>1002</calledDirectoryNumber><autoOriginate>doNotPrompt</autoOriginate></MakeCall></iq>`,
  `<iq type='set' id='e1' from='cti.localhost' to='alice@localhost/laptop'><DeliveredEvent xmlns='${CSTA}'><monitorCrossRefID>7</monitorCrossRefID><connection><callID>42</callID><deviceID>1002</deviceID></connection><alertingDevice><deviceIdentifier>1002</deviceIdentifier></alertingDevice><callingDevice><deviceIdentifier>1001</deviceIdentifier></callingDevice><calledDevice><deviceIdentifier>1002</deviceIdentifier></calledDevice><lastRedirectionDevice><notKnown/></lastRedirectionDevice><localConnectionInfo>alerting</localConnectionInfo><cause>normal</cause></DeliveredEvent></iq>`,
  "<iq type='result' id='e1' to='cti.localhost'/>",
];
const CSTA_EVENT = `<?xml version="1.0" encoding="UTF-8"?><EstablishedEvent xmlns="${CSTA}"><monitorCrossRefID>7</monitorCrossRefID><establishedConnection><callID>42</callID><deviceID>1002</deviceID></establishedConnection><answeringDevice><deviceIdentifier>1002</deviceIdentifier></answeringDevice><callingDevice><deviceIdentifier>1001</deviceIdentifier></callingDevice><calledDevice><deviceIdentifier>1002</deviceIdentifier></calledDevice><lastRedirectionDevice><notKnown/></lastRedirectionDevice><localConnectionInfo>connected</localConnectionInfo><cause>normal</cause></EstablishedEvent>`;

const HEADER =
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

function corpus(count: number): { chunks: Buffer[]; bytes: number } {
  const parts: string[] = [HEADER];
  for (let i = 0; i < count; i++) parts.push(STANZAS[i % STANZAS.length]!);
  const data = Buffer.from(parts.join(''), 'utf8');
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += 4096) chunks.push(data.subarray(i, i + 4096));
  return { chunks, bytes: data.length };
}

function runOurs(chunks: Buffer[]): number {
  let stanzas = 0;
  const reader = new XmlStreamReader(
    {
      onStreamStart() {},
      onStanza() {
        stanzas++;
      },
      onStreamEnd() {},
      onError(e) {
        throw e;
      },
    },
    { limits: { maxStanzaBytes: 256 * 1024, maxBufferedBytes: 264 * 1024, maxAttributes: 256 } },
  );
  for (const chunk of chunks) reader.feed(chunk);
  return stanzas;
}

function runBareSaxes(chunks: Buffer[]): number {
  let stanzas = 0;
  let depth = 0;
  const parser = new SaxesParser({ xmlns: true });
  const decoder = new TextDecoder('utf-8', { fatal: true });
  parser.on('opentag', () => {
    depth++;
  });
  // Text is collected by saxes only when a handler asks for it; every real consumer does.
  parser.on('text', () => {});
  parser.on('closetag', () => {
    depth--;
    if (depth === 1) stanzas++;
  });
  parser.on('error', (e) => {
    throw e;
  });
  for (const chunk of chunks) parser.write(decoder.decode(chunk, { stream: true }));
  return stanzas;
}

/** The same element trees built naively on bare saxes: no limits, no restricted-XML checks. */
function runBareSaxesTree(chunks: Buffer[]): number {
  let stanzas = 0;
  const stack: Element[] = [];
  const parser = new SaxesParser({ xmlns: true });
  const decoder = new TextDecoder('utf-8', { fatal: true });
  parser.on('opentag', (tag) => {
    const element = new Element(tag.local, tag.uri);
    for (const key in tag.attributes) {
      const a = tag.attributes[key]!;
      if (a.prefix !== 'xmlns' && a.name !== 'xmlns') element.attrs[a.local] = a.value;
    }
    stack[stack.length - 1]?.children.push(element);
    stack.push(element);
  });
  parser.on('text', (text) => {
    stack[stack.length - 1]?.children.push(text);
  });
  parser.on('closetag', () => {
    stack.pop();
    if (stack.length === 1) stanzas++;
  });
  parser.on('error', (e) => {
    throw e;
  });
  for (const chunk of chunks) parser.write(decoder.decode(chunk, { stream: true }));
  return stanzas;
}

function measure(seconds: number, fn: () => number): { perSec: number; units: number } {
  fn(); // warm-up
  let units = 0;
  let runs = 0;
  const start = performance.now();
  while (performance.now() - start < seconds * 1000) {
    units += fn();
    runs++;
  }
  const elapsed = (performance.now() - start) / 1000;
  return { perSec: units / elapsed, units: runs };
}

const VARIANTS: Record<string, (chunks: Buffer[]) => number> = {
  ours: runOurs,
  bare: runBareSaxes,
  tree: runBareSaxesTree,
  'doc-ours': () => {
    const doc = Buffer.from(CSTA_EVENT);
    for (let i = 0; i < 1000; i++) parseDocument(doc);
    return 1000;
  },
  'doc-bare': () => {
    const doc = Buffer.from(CSTA_EVENT);
    const decoder = new TextDecoder('utf-8', { fatal: true });
    for (let i = 0; i < 1000; i++) {
      const p = new SaxesParser({ xmlns: true });
      p.on('error', (e) => {
        throw e;
      });
      p.on('text', () => {});
      p.write(decoder.decode(doc)).close();
    }
    return 1000;
  },
};

/** Each variant runs in its own process: saxes code shared between variants would share JIT state. */
function runVariant(name: string, seconds: number): number {
  const out = execFileSync(
    process.execPath,
    [
      '--import',
      'tsx',
      fileURLToPath(new URL('run.ts', import.meta.url)),
      'xml',
      '--variant',
      name,
      '--seconds',
      String(seconds),
    ],
    { encoding: 'utf8' },
  );
  return Number(out.trim().split('\n').pop());
}

export default async function bench(args: string[]): Promise<void> {
  const secondsArg = args.indexOf('--seconds');
  const seconds = secondsArg >= 0 ? Number(args[secondsArg + 1]) : 3;
  const variantArg = args.indexOf('--variant');
  const { chunks, bytes } = corpus(20_000);
  if (variantArg >= 0) {
    const fn = VARIANTS[args[variantArg + 1]!]!;
    console.log(measure(seconds, () => fn(chunks)).perSec);
    return;
  }
  console.log(
    `corpus: 20,000 stanzas, ${(bytes / 1e6).toFixed(1)} MB, fed in 4 KiB chunks; ${seconds} s per measurement,`,
  );
  console.log('each variant in its own process, best of 2 runs');
  const best = (name: string) => Math.max(runVariant(name, seconds), runVariant(name, seconds));
  const ours = best('ours');
  const bare = best('bare');
  const tree = best('tree');
  const perStanza = bytes / 20_000;
  const line = (label: string, rate: number, note: string) =>
    console.log(
      `${label.padEnd(28)} ${(rate / 1000).toFixed(1).padStart(7)} k stanzas/s ${((rate * perStanza) / 1e6).toFixed(1).padStart(6)} MB/s  ${note}`,
    );
  line('stream, ours', ours, 'element trees, limits, restricted XML, strict UTF-8');
  line('stream, bare saxes', bare, 'events incl. text, no tree');
  line('stream, bare saxes + tree', tree, 'the same trees built naively, no protections');
  console.log(`ratio bare saxes / ours:        ${(bare / ours).toFixed(2)}x  (aim <= 1.3x)`);
  console.log(`ratio bare saxes + tree / ours: ${(tree / ours).toFixed(2)}x`);
  const docOurs = best('doc-ours');
  const docBare = best('doc-bare');
  console.log(`document (CSTA event), ours:       ${(docOurs / 1000).toFixed(1)} k/s`);
  console.log(`document (CSTA event), bare saxes: ${(docBare / 1000).toFixed(1)} k/s`);
  console.log(`ratio bare saxes / ours:           ${(docBare / docOurs).toFixed(2)}x`);
}
