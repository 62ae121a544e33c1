/** Test harness: a text server on free ports with an in-memory store, plus raw-socket helpers. */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { Element, POST_AUTH_LIMITS, serialize, XmlStreamReader } from '../../src/xml/index.ts';
import { type ClientOptions, XmppClient } from '../../src/xmpp/client.ts';
import { NS } from '../../src/xmpp/ns.ts';
import { XmppServer, type XmppServerConfig } from '../../src/xmpp-server/server.ts';
import { credentialsFor, MemoryStore } from '../../src/xmpp-server/store.ts';
import { waitUntil } from '../helpers/net.ts';

export const DOMAIN = 'localhost';
export const GATEWAY = 'cti.localhost';
export const GATEWAY_SECRET = 'gwsecret';

/** Certificates are slow to make: one data directory with a certificate for all tests of a process. */
let sharedDataDir: string | undefined;
function dataDir(): string {
  if (sharedDataDir === undefined) {
    sharedDataDir = mkdtempSync(join(tmpdir(), 'sb-xmpp-'));
    process.on('exit', () => rmSync(sharedDataDir!, { recursive: true, force: true }));
  }
  return sharedDataDir;
}

export async function startServer(
  t: TestContext,
  users: Record<string, string> = { alice: 'alicepw', bob: 'bobpw', carol: 'carolpw' },
  overrides: Partial<XmppServerConfig> = {},
): Promise<XmppServer> {
  const store = new MemoryStore();
  for (const [name, password] of Object.entries(users))
    store.createAccount(name, await credentialsFor(password));
  const server = new XmppServer(
    {
      domain: DOMAIN,
      host: '127.0.0.1',
      c2sPort: 0,
      componentPort: 0,
      components: new Map([[GATEWAY, GATEWAY_SECRET]]),
      allowPlainLoopback: true,
      dataDir: dataDir(),
      ...overrides,
    },
    { store },
  );
  await server.start();
  t.after(() => server.stop());
  return server;
}

export async function login(
  t: TestContext,
  server: XmppServer,
  username: string,
  options: Partial<ClientOptions> = {},
): Promise<XmppClient> {
  const client = await XmppClient.connect({
    host: '127.0.0.1',
    port: server.c2sPort,
    domain: DOMAIN,
    username,
    password: `${username}pw`,
    tls: 'none',
    ...options,
  });
  t.after(() => client.kill());
  return client;
}

/** A raw TCP conversation: write strings, wait for output matching a pattern. */
export class Raw {
  readonly socket: Socket;
  output = '';
  closed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.output += d;
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
    });
  }

  static async open(t: TestContext, port: number): Promise<Raw> {
    const socket = connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    t.after(() => socket.destroy());
    return new Raw(socket);
  }

  write(data: string): void {
    this.socket.write(data);
  }

  async expect(pattern: RegExp, timeoutMs = 5000): Promise<RegExpMatchArray> {
    let match: RegExpMatchArray | null = null;
    await waitUntil(
      () => {
        match = this.output.match(pattern);
        return match !== null || this.closed;
      },
      timeoutMs,
      `${pattern} in ${JSON.stringify(this.output)}`,
    );
    if (match === null) throw new Error(`closed before ${pattern}; got ${JSON.stringify(this.output)}`);
    return match;
  }

  async expectClosed(timeoutMs = 5000): Promise<void> {
    await waitUntil(() => this.closed, timeoutMs, 'socket close');
  }
}

export const HEADER = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${DOMAIN}' version='1.0'>`;

/** A minimal XEP-0114 component for tests: handshake, then a queue of received stanzas. */
export class TestComponent {
  readonly received: Element[] = [];
  streamError: string | undefined;
  closed = false;
  private readonly socket: Socket;
  private readonly reader: XmlStreamReader;
  private streamId: string | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.reader = new XmlStreamReader(
      {
        onStreamStart: (root) => {
          this.streamId = root.attr('id');
        },
        onStanza: (el) => {
          if (el.name === 'error' && el.ns === NS.stream) {
            this.streamError = el.elements().find((e) => e.ns === NS.streams && e.name !== 'text')?.name;
          }
          this.received.push(el);
        },
        onStreamEnd: () => {
          this.closed = true;
        },
        onError: () => {
          this.closed = true;
        },
      },
      { root: { name: 'stream', ns: NS.stream }, limits: POST_AUTH_LIMITS },
    );
    socket.on('data', (chunk: Buffer) => this.reader.feed(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
    });
  }

  /** Connects and handshakes; resolves even when the server refuses (check `streamError`). */
  static async connect(
    t: TestContext,
    port: number,
    domain = GATEWAY,
    secret = GATEWAY_SECRET,
  ): Promise<TestComponent> {
    const socket = connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    t.after(() => socket.destroy());
    const c = new TestComponent(socket);
    socket.write(
      `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='${domain}'>`,
    );
    await waitUntil(() => c.streamId !== undefined || c.closed, 5000, 'component stream header');
    if (c.closed) return c;
    socket.write(
      `<handshake>${createHash('sha1')
        .update(c.streamId! + secret)
        .digest('hex')}</handshake>`,
    );
    await waitUntil(() => c.received.length > 0 || c.closed, 5000, 'handshake reply');
    return c;
  }

  get handshakeOk(): boolean {
    return this.received[0]?.name === 'handshake';
  }

  send(stanza: Element): void {
    this.socket.write(serialize(stanza, NS.component));
  }

  write(data: string): void {
    this.socket.write(data);
  }

  async waitFor(predicate: (el: Element) => boolean, timeoutMs = 5000, what = 'stanza'): Promise<Element> {
    let found: Element | undefined;
    await waitUntil(
      () => {
        found = this.received.find(predicate);
        return found !== undefined;
      },
      timeoutMs,
      what,
    );
    return found!;
  }

  async waitClosed(timeoutMs = 5000): Promise<void> {
    await waitUntil(() => this.closed, timeoutMs, 'component close');
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Shorthand stanza builders (jabber:client). */
export function message(attrs: Record<string, string | undefined>, body?: string): Element {
  const m = new Element('message', NS.client, attrs);
  if (body !== undefined) m.c('body').append(body);
  return m;
}

export function presence(attrs: Record<string, string | undefined> = {}, priority?: number): Element {
  const p = new Element('presence', NS.client, attrs);
  if (priority !== undefined) p.c('priority').append(String(priority));
  return p;
}

export function iq(
  attrs: Record<string, string | undefined>,
  payloadName: string,
  payloadNs: string,
): Element {
  return new Element('iq', NS.client, attrs, [new Element(payloadName, payloadNs)]);
}

export function errorCondition(el: Element): string | undefined {
  const error = el.getChild('error');
  return error?.elements().find((e) => e.ns === NS.stanzas && e.name !== 'text')?.name;
}

/** Proves that nothing matching `predicate` arrived: sends a ping and waits for its answer first (the server keeps order). */
export async function assertNothingBefore(
  client: XmppClient,
  predicate: (el: Element) => boolean,
  what: string,
): Promise<void> {
  const before = client.received.length;
  await client.iq(iq({ type: 'get', to: DOMAIN }, 'ping', NS.ping));
  const hit = client.received.slice(before).find(predicate);
  if (hit !== undefined) throw new Error(`unexpected ${what}: ${serialize(hit)}`);
}
