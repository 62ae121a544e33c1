/**
 * `switchboard check [--config FILE] [--user NAME --password P]`: connects to each part of a running
 * deployment, as its configuration describes it, and reports what works, one line per check. Exit code
 * 0 when every check passed, 1 otherwise.
 */

import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { type Config, gatewayJid } from '../config/config.ts';
import { CstaLink } from '../csta/index.ts';
import { SipResponse } from '../sip/message.ts';
import { parseMessage } from '../sip/parser.ts';
import { Element } from '../xml/index.ts';
import { XmppClient } from '../xmpp/client.ts';
import { startCommand } from './command.ts';

const USAGE = `Usage: switchboard check [--config FILE] [--user NAME --password P] [--timeout SECONDS]

Checks a running deployment: the text server's client and component ports, the voice server's SIP
(OPTIONS) and CSTA XML ports, the metrics endpoint, and, with a user's credentials, a login and the
gateway (disco#info and RequestSystemStatus through it).`;

interface Result {
  name: string;
  ok: boolean;
  detail: string;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from ${what} within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Opens a stream and reads the server's first bytes: an XMPP server answers with a stream header. */
function xmppPort(host: string, port: number, ns: string, to: string, ms: number): Promise<string> {
  const socket = connect({ host, port });
  return withTimeout(
    new Promise<string>((resolve, reject) => {
      let data = '';
      socket.setEncoding('utf8');
      socket.on('connect', () =>
        socket.write(
          `<?xml version='1.0'?><stream:stream xmlns='${ns}' xmlns:stream='http://etherx.jabber.org/streams' to='${to}' version='1.0'>`,
        ),
      );
      socket.on('data', (d: string) => {
        data += d;
        if (/<stream:stream[^>]*>/.test(data)) {
          socket.destroy();
          const id = /id=['"]([^'"]+)/.exec(data)?.[1];
          resolve(id === undefined ? 'stream opened' : `stream opened (id ${id.slice(0, 12)}…)`);
        }
      });
      socket.on('error', reject);
      socket.on('close', () =>
        reject(
          new Error(data === '' ? 'closed without answering' : `unexpected answer: ${data.slice(0, 80)}`),
        ),
      );
    }),
    ms,
    `${host}:${port}`,
  ).finally(() => socket.destroy());
}

function sipOptions(host: string, port: number, domain: string, ms: number): Promise<string> {
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  let closed = false;
  const close = () => {
    if (!closed) socket.close();
    closed = true;
  };
  return withTimeout(
    new Promise<string>((resolve, reject) => {
      socket.on('error', (e) => reject(e));
      socket.bind(0, () => {
        const local = socket.address();
        const branch = `z9hG4bK${randomBytes(8).toString('hex')}`;
        const request = [
          `OPTIONS sip:${domain} SIP/2.0`,
          `Via: SIP/2.0/UDP ${local.address}:${local.port};branch=${branch};rport`,
          'Max-Forwards: 70',
          `From: <sip:check@${domain}>;tag=${randomBytes(4).toString('hex')}`,
          `To: <sip:${domain}>`,
          `Call-ID: ${randomBytes(8).toString('hex')}@switchboard-check`,
          'CSeq: 1 OPTIONS',
          'Accept: application/sdp',
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n');
        socket.on('message', (msg) => {
          try {
            const response = parseMessage(msg);
            if (!(response instanceof SipResponse)) throw new Error('not a response');
            if (response.status !== 200) throw new Error(`${response.status} ${response.reason}`);
            resolve(`200 OK, Allow: ${response.get('Allow') ?? '-'}`);
          } catch (e) {
            reject(e);
          }
        });
        socket.send(request, port, host);
      });
    }),
    ms,
    `SIP ${host}:${port}`,
  ).finally(close);
}

async function cstaPort(host: string, port: number, ms: number): Promise<string> {
  const link = new CstaLink({
    host,
    port,
    reconnect: false,
    keepAliveIntervalMs: 0,
    awaitSystemStatusMs: 500,
  });
  try {
    const up = withTimeout(
      new Promise<string>((resolve, reject) => {
        link.once('up', (info) => resolve(info.ns));
        link.once('down', (info) => reject(new Error(info.reason)));
      }),
      ms,
      `CSTA ${host}:${port}`,
    );
    link.start();
    const ns = await up;
    const status = await link.request({ name: 'RequestSystemStatus' });
    return `handshake done, system status ${status.systemStatus}, ${ns.split('/').pop()}`;
  } finally {
    await link.stop();
  }
}

async function metricsEndpoint(host: string, port: number, ms: number): Promise<string> {
  const response = await withTimeout(fetch(`http://${host}:${port}/metrics`), ms, `http://${host}:${port}`);
  if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
  const text = await response.text();
  const gauges = text.split('\n').filter((l) => l.startsWith('switchboard_') && !l.includes('_total')).length;
  return `${gauges} gauges`;
}

async function gatewayThroughLogin(
  config: Config,
  user: string,
  password: string,
  ms: number,
): Promise<Result[]> {
  const results: Result[] = [];
  let client: XmppClient;
  try {
    client = await XmppClient.connect({
      host: config.xmpp.host,
      port: config.xmpp.c2s_port,
      domain: config.xmpp.domain,
      username: user,
      password,
      tls: 'starttls',
      timeoutMs: ms,
    });
    results.push({ name: 'login', ok: true, detail: `${client.jid} (STARTTLS, SASL)` });
  } catch (e) {
    results.push({ name: 'login', ok: false, detail: (e as Error).message });
    return results;
  }
  try {
    const gw = gatewayJid(config);
    const disco = new Element('iq', 'jabber:client', { type: 'get', to: gw, id: 'check-disco' });
    disco.c('query', {}, 'http://jabber.org/protocol/disco#info');
    const info = await client.iq(disco, ms);
    const editions = info
      .getChild('query')
      ?.getChildren('feature')
      .map((f) => f.attr('var') ?? '')
      .filter((v) => v.includes('ecma-323'))
      .map((v) => v.split('/').pop());
    const ok = info.attr('type') === 'result' && (editions?.length ?? 0) > 0;
    results.push({
      name: 'gateway',
      ok,
      detail: ok ? `${gw} offers CSTA ${editions!.join(', ')}` : `${gw} answered ${info.attr('type')}`,
    });
    const status = new Element('iq', 'jabber:client', { type: 'get', to: gw, id: 'check-status' });
    status.c('RequestSystemStatus', {}, 'http://www.ecma-international.org/standards/ecma-323/csta/ed4');
    const answer = await client.iq(status, ms);
    const value = answer.find('RequestSystemStatusResponse', 'systemStatus')?.text();
    results.push({
      name: 'gateway → voice server',
      ok: value === 'normal',
      detail: value === undefined ? `answered ${answer.attr('type')}` : `system status ${value}`,
    });
  } catch (e) {
    results.push({ name: 'gateway', ok: false, detail: (e as Error).message });
  } finally {
    await client.close().catch(() => {});
  }
  return results;
}

export async function checkDeployment(
  config: Config,
  options: { user?: string | undefined; password?: string | undefined; timeoutMs?: number },
): Promise<Result[]> {
  const ms = options.timeoutMs ?? 5000;
  const run = async (name: string, f: () => Promise<string>): Promise<Result> => {
    try {
      return { name, ok: true, detail: await f() };
    } catch (e) {
      return { name, ok: false, detail: (e as Error).message };
    }
  };
  const results = await Promise.all([
    run(`text server c2s ${config.xmpp.host}:${config.xmpp.c2s_port}`, () =>
      xmppPort(config.xmpp.host, config.xmpp.c2s_port, 'jabber:client', config.xmpp.domain, ms),
    ),
    run(
      `text server components ${config.gateway.xmpp_host}:${config.gateway.xmpp_port ?? config.xmpp.component_port}`,
      () =>
        xmppPort(
          config.gateway.xmpp_host,
          config.gateway.xmpp_port ?? config.xmpp.component_port,
          'jabber:component:accept',
          gatewayJid(config),
          ms,
        ),
    ),
    run(`voice server SIP ${config.pbx.host}:${config.pbx.sip_port}`, () =>
      sipOptions(config.pbx.host, config.pbx.sip_port, config.xmpp.domain, ms),
    ),
    run(
      `voice server CSTA ${config.gateway.csta_host}:${config.gateway.csta_port ?? config.pbx.csta_port}`,
      () => cstaPort(config.gateway.csta_host, config.gateway.csta_port ?? config.pbx.csta_port, ms),
    ),
    run(`metrics http://${config.http.host}:${config.http.port}/metrics`, () =>
      metricsEndpoint(config.http.host, config.http.port, ms),
    ),
  ]);
  if (options.user !== undefined && options.password !== undefined) {
    results.push(...(await gatewayThroughLogin(config, options.user, options.password, ms)));
  }
  return results;
}

export async function run(argv: string[]): Promise<number> {
  const started = startCommand('check', argv, USAGE, ['user', 'password', 'timeout']);
  if (typeof started === 'number') return started;
  const { config, values } = started;
  const timeoutS = values.timeout === undefined ? 5 : Number(values.timeout);
  const results = await checkDeployment(config, {
    user: values.user,
    password: values.password,
    timeoutMs: timeoutS * 1000,
  });
  for (const r of results) console.log(`${r.ok ? 'ok  ' : 'FAIL'}  ${r.name}: ${r.detail}`);
  const failed = results.filter((r) => !r.ok).length;
  console.log(
    failed === 0 ? `all ${results.length} checks passed` : `${failed} of ${results.length} checks failed`,
  );
  return failed === 0 ? 0 : 1;
}
