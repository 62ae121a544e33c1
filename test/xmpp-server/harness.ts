/** Test harness: a text server on free ports with an in-memory store, plus raw-socket helpers. */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { type ClientOptions, XmppClient } from '../../src/xmpp/client.ts';
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
