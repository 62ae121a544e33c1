/**
 * `npm run bench -- csta [N]`: CSTA codec and link throughput.
 * 1. DeliveredEvent encode, decode, and encode+decode per second (plain and OpenScape-style with
 *    servicesPermitted and private data).
 * 2. Framed events over loopback TCP in one process: server encode + frame → TCP → split + parse +
 *    decode on the client. Aim: ≥ 50,000 events/s on one core.
 */
import { connect } from 'node:net';
import { decodeMessage, encodeMessage, parseMessage, serializeMessage } from '../src/csta/codec.ts';
import type { CstaMessage } from '../src/csta/messages.ts';
import { CstaServer } from '../src/csta/server.ts';
import { silentLogger } from '../src/csta/session.ts';
import { attachSession } from '../src/csta/socket.ts';
import { parseDocument, serialize } from '../src/xml/index.ts';

const DELIVERED: CstaMessage = {
  name: 'DeliveredEvent',
  monitorCrossRefID: 'mon202',
  connection: { callID: 'c1', deviceID: '202' },
  alertingDevice: { deviceIdentifier: '202' },
  callingDevice: { deviceIdentifier: '201' },
  calledDevice: { deviceIdentifier: '202' },
  lastRedirectionDevice: { notRequired: true },
  localConnectionInfo: 'alerting',
  cause: 'newCall',
};

const OSV_XML = `<?xml version="1.0" encoding="UTF-8"?><DeliveredEvent xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><monitorCrossRefID>1742</monitorCrossRefID><connection><callID>FF000100000000002D65C85C1C750000</callID><deviceID>7868772298</deviceID></connection><alertingDevice><deviceIdentifier>N&lt;7868772298&gt;Line71001;displayNumber=7868772298</deviceIdentifier></alertingDevice><callingDevice><deviceIdentifier>N&lt;302118840100&gt;;noa=nk</deviceIdentifier></callingDevice><calledDevice><deviceIdentifier>N&lt;7868772298&gt;</deviceIdentifier></calledDevice><lastRedirectionDevice><notRequired/></lastRedirectionDevice><localConnectionInfo>alerting</localConnectionInfo><cause>newCall</cause><servicesPermitted><callControlServices><clearConnection>true</clearConnection><deflectCall>true</deflectCall></callControlServices><callAssociatedServices/><mediaAttachementServices/><routeingServices/><voiceServices/></servicesPermitted><networkCalledDevice><deviceIdentifier>7868772298</deviceIdentifier></networkCalledDevice><associatedCallingDevice><notKnown/></associatedCallingDevice><mediaCallCharacteristics><mediaClass><voice>true</voice></mediaClass></mediaCallCharacteristics><extensions><privateData><private><scx:staticOndDN xmlns:scx="http://www.siemens.com/schema/csta">true</scx:staticOndDN></private></privateData></extensions></DeliveredEvent>`;

function rate(label: string, n: number, ms: number, extra = ''): void {
  console.log(
    `${label.padEnd(44)} ${Math.round((n / ms) * 1000)
      .toLocaleString('en-US')
      .padStart(10)} /s${extra}`,
  );
}

function timeLoop(n: number, fn: () => void): number {
  for (let i = 0; i < Math.min(2000, n); i++) fn(); // warm-up
  const start = performance.now();
  for (let i = 0; i < n; i++) fn();
  return performance.now() - start;
}

async function framedThroughput(n: number): Promise<{ ms: number; bytes: number }> {
  const server = new CstaServer({ greet: false });
  const { port } = await server.listen();
  const socket = connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const { session } = attachSession(socket, { edition: 'ed4' }, silentLogger);
  while (server.connections.size === 0) await new Promise((r) => setImmediate(r));
  const connection = [...server.connections][0]!;
  let received = 0;
  let bytes = 0;
  socket.on('data', (d: Buffer) => {
    bytes += d.length;
  });
  const done = new Promise<void>((resolve) =>
    session.on('event', () => {
      if (++received === n) resolve();
    }),
  );
  const start = performance.now();
  let sent = 0;
  while (sent < n) {
    const batch = Math.min(500, n - sent);
    for (let i = 0; i < batch; i++) connection.sendEvent(DELIVERED);
    sent += batch;
    // Keep at most a few thousand events in flight so the figure is throughput, not buffering.
    while (sent - received > 4000) await new Promise((r) => setImmediate(r));
  }
  await done;
  const ms = performance.now() - start;
  socket.destroy();
  await server.close();
  return { ms, bytes };
}

export default async function bench(args: string[]): Promise<void> {
  const n = Number(args[0] ?? '100000');
  const xml = serializeMessage(DELIVERED);
  console.log(
    `CSTA codec (${n.toLocaleString('en-US')} iterations; DeliveredEvent ${Buffer.byteLength(xml)} bytes)`,
  );
  rate(
    'encode (typed → XML text)',
    n,
    timeLoop(n, () => serializeMessage(DELIVERED)),
  );
  rate(
    'XML parse only (src/xml parseDocument)',
    n,
    timeLoop(n, () => parseDocument(xml)),
  );
  const tree = parseDocument(xml);
  rate(
    '  typed decode of a parsed tree (src/csta)',
    n,
    timeLoop(n, () => decodeMessage(tree)),
  );
  rate(
    '  typed encode to a tree (src/csta)',
    n,
    timeLoop(n, () => encodeMessage(DELIVERED)),
  );
  const encoded = encodeMessage(DELIVERED);
  rate(
    '  serialize a tree (src/xml)',
    n,
    timeLoop(n, () => serialize(encoded, null)),
  );
  rate(
    'decode (XML text → typed)',
    n,
    timeLoop(n, () => parseMessage(xml)),
  );
  rate(
    'encode + decode',
    n,
    timeLoop(n, () => parseMessage(serializeMessage(DELIVERED))),
  );
  const osv = parseMessage(OSV_XML).message!;
  const osvBytes = Buffer.byteLength(OSV_XML);
  rate(
    `OpenScape-style event encode + decode (${osvBytes} B)`,
    n,
    timeLoop(n, () => parseMessage(serializeMessage(osv))),
  );

  const framed = Math.min(n, 200_000);
  const { ms, bytes } = await framedThroughput(framed);
  rate(
    `framed over loopback TCP (${framed.toLocaleString('en-US')} events)`,
    framed,
    ms,
    `  (${(((bytes / ms) * 1000) / 1e6).toFixed(1)} MB/s, one process, encode+frame+split+decode)`,
  );
}
