/**
 * `npm run bench -- gateway [--seconds N] [--clients N] [--monitors N]`
 *
 * 1. End to end, voice server → gateway → our text server → client, against a pass-through component
 *    baseline in the same run: events/s at saturation (a window of unacknowledged events per client) and
 *    p50/p99 latency at a fixed rate. The baseline cuts the CSTA frames and forwards their XML bodies as iq
 *    payloads with no decoding: the least any component must do. The difference is what the gateway adds.
 * 2. Memory per client monitor with N (default 10,000) monitors, gateway heap after GC.
 *
 * The text server runs as its own process; voice server, component and clients share this one.
 */

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  CstaLink,
  type CstaMessage,
  CstaServer,
  type CstaServerConnection,
  HeaderFrameSplitter,
} from '../src/csta/index.ts';
import { DeviceAuthorization } from '../src/gateway/authorization.ts';
import { ComponentConnection, stanza } from '../src/gateway/component.ts';
import { Gateway } from '../src/gateway/gateway.ts';
import { Element, parseDocument } from '../src/xml/index.ts';
import { XmppClient } from '../src/xmpp/client.ts';

const ED4 = 'http://www.ecma-international.org/standards/ecma-323/csta/ed4';
const ROOT = new URL('../', import.meta.url).pathname;

function arg(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  s.close();
  return port;
}

function delivered(xref: string, stamp: string): CstaMessage {
  return {
    name: 'DeliveredEvent',
    monitorCrossRefID: xref,
    connection: { callID: stamp, deviceID: '1002' },
    alertingDevice: { deviceIdentifier: '1002' },
    callingDevice: { deviceIdentifier: '1001' },
    calledDevice: { deviceIdentifier: '1002' },
    lastRedirectionDevice: { notKnown: true },
    localConnectionInfo: 'alerting',
    cause: 'newCall',
  } as CstaMessage;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function startTextServer(dir: string, clients: number) {
  const c2s = await freePort();
  const component = await freePort();
  const users = Array.from(
    { length: clients },
    (_, i) => `[[users]]\nname = "u${i}"\npassword = "pw${i}"\nextension = "${2000 + i}"\n`,
  ).join('');
  writeFileSync(
    join(dir, 'xmpp.toml'),
    `log_level = "error"\n[http]\nport = 0\n[xmpp]\nc2s_port = ${c2s}\ncomponent_port = ${component}\ncomponent_secret = "s"\nallow_plain_loopback = true\n${users}`,
  );
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'xmpp',
      '--config',
      join(dir, 'xmpp.toml'),
      '--data',
      join(dir, 'data'),
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  const deadline = Date.now() + 30_000;
  while (!out.includes('text server for') && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
  if (!out.includes('text server for')) throw new Error(`text server did not start: ${out}`);
  return { c2s, component, stop: () => child.kill('SIGTERM') };
}

/** The baseline: CSTA frames in, their XML bodies forwarded as iq payloads, no decoding. */
class PassThrough {
  private readonly component: ComponentConnection;
  private readonly routes: Map<string, string>;
  private n = 0;

  constructor(component: ComponentConnection, port: number, routes: Map<string, string>) {
    this.component = component;
    this.routes = routes;
    const socket = connect({ host: '127.0.0.1', port });
    const splitter = new HeaderFrameSplitter({
      onFrame: (frame) => {
        const body = frame.body.toString('utf8');
        const start = body.indexOf('<monitorCrossRefID>') + 19;
        const xref = body.slice(start, body.indexOf('<', start));
        const jid = this.routes.get(xref);
        if (jid === undefined) return;
        const iq = stanza('iq', { type: 'set', id: `p${this.n++}`, to: jid, from: 'cti.localhost' });
        iq.append(parseDocument(body));
        this.component.send(iq);
      },
      onError: () => socket.destroy(),
    });
    socket.on('data', (d) => splitter.push(d));
  }
}

interface Run {
  events: number;
  seconds: number;
  latencies: number[];
}

async function endToEnd(
  mode: 'gateway' | 'passthrough',
  clientsN: number,
  seconds: number,
  ratePerS: number,
) {
  const dir = mkdtempSync(join(tmpdir(), 'sb-bench-gw-'));
  const text = await startTextServer(dir, clientsN);
  const pbx = new CstaServer();
  const conns: CstaServerConnection[] = [];
  let xrefN = 0;
  const xrefs: string[] = [];
  pbx.on('connection', (c) => {
    conns.push(c);
    c.on('request', (r) => {
      if (r.message?.name === 'MonitorStart') {
        const x = `X${xrefN++}`;
        xrefs.push(x);
        r.reply({ name: 'MonitorStartResponse', monitorCrossRefID: x });
      } else if (r.message?.name === 'MonitorStop') r.reply({ name: 'MonitorStopResponse' });
      else r.fail({ operation: 'serviceNotSupported' } as never);
    });
  });
  const pbxPort = (await pbx.listen()).port;
  const component = new ComponentConnection({
    host: '127.0.0.1',
    port: text.component,
    domain: 'cti.localhost',
    secret: 's',
    keepAliveS: 0,
  });
  let link: CstaLink | undefined;
  let gateway: Gateway | undefined;
  const routes = new Map<string, string>();
  if (mode === 'gateway') {
    link = new CstaLink({
      host: '127.0.0.1',
      port: pbxPort,
      awaitSystemStatusMs: 300,
      keepAliveIntervalMs: 0,
    });
    const grants = Array.from({ length: clientsN }, (_, i) => ({
      jid: `u${i}@localhost`,
      devices: [String(2000 + i)],
    }));
    gateway = new Gateway({
      jid: 'cti.localhost',
      xmpp: component,
      pbx: link,
      authorization: new DeviceAuthorization(grants),
    });
    component.on('stanza', (s) => gateway!.handleStanza(s));
    link.start();
    await once(link, 'up');
  } else {
    new PassThrough(component, pbxPort, routes);
  }
  component.start();
  await once(component, 'online');

  const clients: XmppClient[] = [];
  const latencies: number[] = [];
  let received = 0;
  const outstanding = new Map<string, number>(); // xref → unacked events
  for (let i = 0; i < clientsN; i++) {
    const c = await XmppClient.connect({
      host: '127.0.0.1',
      port: text.c2s,
      domain: 'localhost',
      username: `u${i}`,
      password: `pw${i}`,
      tls: 'none',
      resource: 'bench',
    });
    c.on('stanza', (s: Element) => {
      if (s.name !== 'iq' || s.attr('type') !== 'set') return;
      const event = s.elements()[0];
      if (event === undefined) return;
      const stamp = event.find('connection', 'callID')?.text();
      if (stamp !== undefined) latencies.push(performance.now() - Number(stamp));
      received++;
      const xref = event.getChildText('monitorCrossRefID')!;
      outstanding.set(xref, (outstanding.get(xref) ?? 1) - 1);
      c.send(new Element('iq', 'jabber:client', { type: 'result', id: s.attr('id'), to: s.attr('from') }));
    });
    clients.push(c);
    if (mode === 'gateway') {
      const m = new Element('iq', 'jabber:client', { type: 'set', to: 'cti.localhost', id: 'm' });
      m.c('MonitorStart', {}, ED4)
        .c('monitorObject')
        .c('deviceObject')
        .append(String(2000 + i));
      await c.iq(m);
    } else {
      const x = `X${xrefN++}`;
      xrefs.push(x);
      routes.set(x, c.jid);
    }
  }
  // The client sees its own cross-ref; the PBX knows its own. Map the client's to the PBX's for accounting.
  const pbxConn = () => conns[conns.length - 1];
  const send = (i: number): void => {
    const pbxXref = xrefs[i]!;
    const xrefSeen = mode === 'gateway' ? String(i + 1) : pbxXref;
    outstanding.set(xrefSeen, (outstanding.get(xrefSeen) ?? 0) + 1);
    if (mode === 'gateway') pbxConn()!.sendEvent(delivered(pbxXref, String(performance.now())));
    else passThroughSend(pbxXref);
  };
  // In pass-through mode the "PBX" writes frames straight to the baseline's socket.
  const passThroughSend = (pbxXref: string) => {
    const c = conns[conns.length - 1];
    c?.sendEvent(delivered(pbxXref, String(performance.now())));
  };
  if (mode === 'passthrough') {
    // The baseline connected to the PBX as a plain TCP client; wait for that connection.
    const deadline = Date.now() + 5000;
    while (conns.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }

  // Phase 1: throughput, a window of 20 unacknowledged events per client.
  const window = 20;
  const runFor = async (ms: number, paced: number | undefined): Promise<Run> => {
    const start = performance.now();
    const received0 = received;
    latencies.length = 0;
    let i = 0;
    while (performance.now() - start < ms) {
      if (paced === undefined) {
        for (let k = 0; k < clientsN; k++) {
          const xrefSeen = mode === 'gateway' ? String(k + 1) : xrefs[k]!;
          while ((outstanding.get(xrefSeen) ?? 0) < window) send(k);
        }
        await new Promise((r) => setImmediate(r));
      } else {
        const due = Math.floor(((performance.now() - start) / 1000) * paced);
        while (i < due) send(i++ % clientsN);
        await new Promise((r) => setTimeout(r, 1));
      }
    }
    const elapsed = (performance.now() - start) / 1000;
    await new Promise((r) => setTimeout(r, 300));
    return {
      events: received - received0,
      seconds: elapsed,
      latencies: [...latencies].sort((a, b) => a - b),
    };
  };
  const saturated = await runFor(seconds * 1000, undefined);
  await new Promise((r) => setTimeout(r, 500));
  const paced = await runFor(seconds * 1000, ratePerS);

  for (const c of clients) await c.close().catch(() => {});
  await gateway?.close();
  await component.stop();
  await link?.stop();
  await pbx.close();
  text.stop();
  rmSync(dir, { recursive: true, force: true });
  return { saturated, paced };
}

async function memoryPerMonitor(count: number): Promise<{ perMonitor: number; heapMb: number }> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const pbx = new CstaServer();
  let n = 0;
  pbx.on('connection', (c) =>
    c.on('request', (r) => {
      if (r.message?.name === 'MonitorStart')
        r.reply({ name: 'MonitorStartResponse', monitorCrossRefID: `X${n++}` });
      else r.reply({ name: 'MonitorStopResponse' } as never);
    }),
  );
  const port = (await pbx.listen()).port;
  const link = new CstaLink({ host: '127.0.0.1', port, awaitSystemStatusMs: 300, keepAliveIntervalMs: 0 });
  const auth = new DeviceAuthorization();
  const devices = count / 2; // two clients per device: shared voice-server monitors, as in real use
  for (let d = 0; d < devices; d++) {
    auth.grant(`user${d}@localhost`, String(100000 + d));
  }
  let answered = 0;
  const gateway = new Gateway({
    jid: 'cti.localhost',
    xmpp: {
      send: () => {
        answered++;
        return true;
      },
    },
    pbx: link,
    authorization: auth,
  });
  link.start();
  await once(link, 'up');
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let d = 0; d < devices; d++) {
    for (const res of ['a', 'b']) {
      const iq = new Element('iq', 'jabber:component:accept', {
        type: 'set',
        id: `m${d}${res}`,
        from: `user${d}@localhost/${res}`,
        to: 'cti.localhost',
      });
      iq.c('MonitorStart', {}, ED4)
        .c('monitorObject')
        .c('deviceObject')
        .append(String(100000 + d));
      gateway.handleStanza(iq);
    }
    if (d % 500 === 499) while (answered < (d + 1) * 2) await new Promise((r) => setImmediate(r));
  }
  while (answered < count) await new Promise((r) => setImmediate(r));
  gc();
  const after = process.memoryUsage().heapUsed;
  const result = { perMonitor: (after - before) / count, heapMb: after / 1048576 };
  if (gateway.clientMonitorCount !== count)
    throw new Error(`only ${gateway.clientMonitorCount} monitors started`);
  await link.stop();
  await pbx.close();
  return result;
}

export default async function bench(args: string[]): Promise<void> {
  const seconds = arg(args, 'seconds', 5);
  const clientsN = arg(args, 'clients', 20);
  const monitors = arg(args, 'monitors', 10_000);
  const rate = arg(args, 'rate', 500);
  console.log(`gateway benchmark: ${clientsN} clients, ${seconds} s per phase, paced rate ${rate} events/s`);
  const base = await endToEnd('passthrough', clientsN, seconds, rate);
  const ours = await endToEnd('gateway', clientsN, seconds, rate);
  const fmt = (r: Run) => `${(r.events / r.seconds).toFixed(0)} events/s`;
  const lat = (r: Run) =>
    `p50 ${percentile(r.latencies, 50).toFixed(2)} ms, p99 ${percentile(r.latencies, 99).toFixed(2)} ms (${r.latencies.length} samples)`;
  console.log(`saturated  pass-through: ${fmt(base.saturated)}`);
  console.log(
    `saturated  gateway:      ${fmt(ours.saturated)}  ratio ${(ours.saturated.events / ours.saturated.seconds / (base.saturated.events / base.saturated.seconds)).toFixed(2)}`,
  );
  console.log(`at ${rate}/s pass-through: ${lat(base.paced)}`);
  console.log(`at ${rate}/s gateway:      ${lat(ours.paced)}`);
  console.log(
    `added by the gateway: p50 ${(percentile(ours.paced.latencies, 50) - percentile(base.paced.latencies, 50)).toFixed(2)} ms, p99 ${(percentile(ours.paced.latencies, 99) - percentile(base.paced.latencies, 99)).toFixed(2)} ms`,
  );
  const mem = await memoryPerMonitor(monitors);
  console.log(
    `memory: ${monitors} client monitors (${monitors / 2} devices): ${(mem.perMonitor / 1024).toFixed(2)} KiB heap per monitor, heap ${mem.heapMb.toFixed(1)} MB`,
  );
}
