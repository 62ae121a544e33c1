/**
 * A small XMPP c2s client: STARTTLS, SASL (SCRAM-SHA-256, SCRAM-SHA-1, PLAIN), bind, and a queue of
 * received stanzas with waits. Used by our tests, benchmarks and `switchboard check`; real clients
 * (slixmpp, @xmpp/client, profanity) test the server independently.
 */
import { EventEmitter } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Element, POST_AUTH_LIMITS, serialize, XmlStreamReader } from '../xml/index.ts';
import { NS } from './ns.ts';
import { decodeBase64Strict, ScramClient, type ScramHash } from './sasl.ts';
import { newStanzaId } from './stanza.ts';

export type Mechanism = 'SCRAM-SHA-256' | 'SCRAM-SHA-1' | 'PLAIN';

export interface ClientOptions {
  host: string;
  port: number;
  domain: string;
  username: string;
  password: string;
  resource?: string;
  /** 'starttls' (default) or 'none' (loopback with allow_plain_loopback). */
  tls?: 'starttls' | 'none';
  mechanism?: Mechanism;
  timeoutMs?: number;
  /** Send the RFC 3921 session request after binding. */
  session?: boolean;
  /** Shared SCRAM SaltedPassword cache (see ScramClient). */
  scramCache?: Map<string, Buffer>;
}

export class XmppClient extends EventEmitter {
  jid = '';
  /** Every stanza received after binding, in order (tests look through it). */
  readonly received: Element[] = [];
  streamError: string | undefined;
  closed = false;
  private socket: Socket;
  private readonly reader: XmlStreamReader;
  private readonly queue: Element[] = [];
  private headerCount = 0;
  private waiters = new Set<() => void>();
  private bound = false;

  private constructor(socket: Socket) {
    super();
    this.socket = socket;
    this.reader = new XmlStreamReader(
      {
        onStreamStart: () => {
          this.headerCount++;
          this.wake();
        },
        onStanza: (el) => {
          if (el.name === 'error' && el.ns === NS.stream) {
            this.streamError =
              el.elements().find((e) => e.ns === NS.streams && e.name !== 'text')?.name ?? 'unknown';
            this.emit('streamError', this.streamError);
          }
          if (this.bound) {
            this.received.push(el);
            this.answerPing(el);
            this.emit('stanza', el);
          } else {
            this.queue.push(el);
          }
          this.wake();
        },
        onStreamEnd: () => {
          this.closed = true;
          this.socket.end();
          this.wake();
        },
        onError: () => {
          this.closed = true;
          this.socket.destroy();
          this.wake();
        },
      },
      { root: { name: 'stream', ns: NS.stream }, limits: POST_AUTH_LIMITS },
    );
    this.attach(socket);
  }

  /** XEP-0199: a ping from our server (its liveness check) is answered at once. */
  private answerPing(el: Element): void {
    if (el.name !== 'iq' || el.attr('type') !== 'get' || el.getChild('ping', NS.ping) === undefined) return;
    const from = el.attr('from');
    // Only the server's own liveness ping; pings from other entities stay for the test to handle.
    const domain = this.jid.split('@')[1]?.split('/')[0];
    if (from !== undefined && from !== domain) return;
    const reply = new Element('iq', NS.client, { type: 'result', id: el.attr('id') });
    if (from !== undefined) reply.setAttr('to', from);
    this.send(reply);
  }

  private attach(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => this.reader.feed(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
      this.emit('close');
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Waits until `check` returns something, re-checking after every input. */
  private wait<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const attempt = () => {
        const value = check();
        if (value !== undefined) {
          done();
          resolve(value);
        } else if (this.closed) {
          done();
          reject(
            new Error(
              `connection closed while waiting for ${what}${this.streamError ? ` (stream error ${this.streamError})` : ''}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(attempt);
      };
      this.waiters.add(attempt);
      attempt();
    });
  }

  private next(timeoutMs: number, what: string): Promise<Element> {
    return this.wait(() => this.queue.shift(), timeoutMs, what);
  }

  private async openStream(domain: string, timeoutMs: number): Promise<Element> {
    const expected = this.headerCount + 1;
    this.write(
      `<?xml version='1.0'?><stream:stream xmlns='${NS.client}' xmlns:stream='${NS.stream}' to='${domain}' version='1.0'>`,
    );
    await this.wait(() => (this.headerCount >= expected ? true : undefined), timeoutMs, 'stream header');
    const features = await this.next(timeoutMs, 'stream features');
    if (features.name !== 'features') throw new Error(`expected features, got <${features.name}>`);
    return features;
  }

  write(data: string): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  send(stanza: Element): void {
    this.write(serialize(stanza, NS.client));
  }

  static async connect(options: ClientOptions): Promise<XmppClient> {
    const timeoutMs = options.timeoutMs ?? 5000;
    const socket = netConnect({ host: options.host, port: options.port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new XmppClient(socket);
    try {
      await client.login(options, timeoutMs);
    } catch (e) {
      client.socket.destroy();
      throw e;
    }
    return client;
  }

  private async login(options: ClientOptions, timeoutMs: number): Promise<void> {
    let features = await this.openStream(options.domain, timeoutMs);
    if ((options.tls ?? 'starttls') === 'starttls') {
      if (features.getChild('starttls', NS.tls) === undefined)
        throw new Error('server does not offer STARTTLS');
      this.write(`<starttls xmlns='${NS.tls}'/>`);
      const proceed = await this.next(timeoutMs, 'proceed');
      if (proceed.name !== 'proceed') throw new Error('STARTTLS refused');
      const raw = this.socket;
      raw.removeAllListeners('data');
      const secure = tlsConnect({ socket: raw, rejectUnauthorized: false, servername: options.domain });
      await new Promise<void>((resolve, reject) => {
        secure.once('secureConnect', resolve);
        secure.once('error', reject);
      });
      this.socket = secure;
      this.reader.reset();
      secure.on('data', (chunk: Buffer) => this.reader.feed(chunk));
      secure.on('error', () => {});
      features = await this.openStream(options.domain, timeoutMs);
    }
    const offered = features
      .getChild('mechanisms', NS.sasl)
      ?.getChildren('mechanism')
      .map((m) => m.text());
    const mechanism = options.mechanism ?? 'SCRAM-SHA-256';
    if (offered === undefined || !offered.includes(mechanism))
      throw new Error(`server does not offer ${mechanism}`);
    await this.authenticate(mechanism, options, timeoutMs);
    this.reader.reset();
    features = await this.openStream(options.domain, timeoutMs);
    const bind = new Element('iq', NS.client, { type: 'set', id: 'bind1' });
    const b = bind.c('bind', {}, NS.bind);
    if (options.resource !== undefined) b.c('resource').append(options.resource);
    this.send(bind);
    const reply = await this.next(timeoutMs, 'bind result');
    const jid = reply.getChild('bind', NS.bind)?.getChildText('jid');
    if (reply.attr('type') !== 'result' || jid === undefined)
      throw new Error(`bind failed: ${serialize(reply)}`);
    this.jid = jid;
    this.bound = true;
    // Anything that arrived right after the bind result belongs to the session.
    for (const el of this.queue.splice(0)) {
      this.received.push(el);
      this.emit('stanza', el);
    }
    if (options.session === true) {
      await this.iq(
        new Element('iq', NS.client, { type: 'set' }, [new Element('session', NS.session)]),
        timeoutMs,
      );
    }
  }

  private async authenticate(mechanism: Mechanism, options: ClientOptions, timeoutMs: number): Promise<void> {
    if (mechanism === 'PLAIN') {
      const data = Buffer.from(`\0${options.username}\0${options.password}`).toString('base64');
      this.write(`<auth xmlns='${NS.sasl}' mechanism='PLAIN'>${data}</auth>`);
    } else {
      const hash: ScramHash = mechanism === 'SCRAM-SHA-1' ? 'SHA-1' : 'SHA-256';
      const scram = new ScramClient(hash, options.username, options.password, undefined, options.scramCache);
      this.write(
        `<auth xmlns='${NS.sasl}' mechanism='${mechanism}'>${scram.first().toString('base64')}</auth>`,
      );
      const challenge = await this.next(timeoutMs, 'SASL challenge');
      if (challenge.name !== 'challenge') throw new Error(`SASL failed: ${saslCondition(challenge)}`);
      const serverFirst = decodeBase64Strict(challenge.text()) ?? Buffer.alloc(0);
      this.write(`<response xmlns='${NS.sasl}'>${scram.final(serverFirst).toString('base64')}</response>`);
      const outcome = await this.next(timeoutMs, 'SASL outcome');
      if (outcome.name !== 'success') throw new Error(`SASL failed: ${saslCondition(outcome)}`);
      if (!scram.verify(decodeBase64Strict(outcome.text()) ?? Buffer.alloc(0)))
        throw new Error('server signature did not verify');
      return;
    }
    const outcome = await this.next(timeoutMs, 'SASL outcome');
    if (outcome.name !== 'success') throw new Error(`SASL failed: ${saslCondition(outcome)}`);
  }

  /** Waits for a received stanza (after binding) that matches; looks at stanzas already received too. */
  waitFor(predicate: (el: Element) => boolean, timeoutMs = 5000, what = 'stanza'): Promise<Element> {
    let index = 0;
    return this.wait(
      () => {
        for (; index < this.received.length; index++) {
          const el = this.received[index]!;
          if (predicate(el)) {
            index++;
            return el;
          }
        }
        return undefined;
      },
      timeoutMs,
      what,
    );
  }

  /** Waits for the stream to close (after a stream error, say). */
  waitClosed(timeoutMs = 5000): Promise<true> {
    return this.wait(() => (this.closed ? true : undefined), timeoutMs, 'close');
  }

  /** Sends an iq (an id is added when missing) and resolves with the result or error reply. */
  async iq(stanza: Element, timeoutMs = 5000): Promise<Element> {
    const id = stanza.attr('id') ?? newStanzaId();
    stanza.setAttr('id', id);
    const start = this.received.length;
    this.send(stanza);
    let index = start;
    return this.wait(
      () => {
        for (; index < this.received.length; index++) {
          const el = this.received[index]!;
          if (
            el.name === 'iq' &&
            el.attr('id') === id &&
            (el.attr('type') === 'result' || el.attr('type') === 'error')
          )
            return el;
        }
        return undefined;
      },
      timeoutMs,
      `iq reply ${id}`,
    );
  }

  /** Closes the stream cleanly and waits for the server's closing tag or the socket close. */
  async close(timeoutMs = 3000): Promise<void> {
    if (this.closed) {
      this.socket.destroy();
      return;
    }
    this.write('</stream:stream>');
    try {
      await this.waitClosed(timeoutMs);
    } finally {
      this.socket.destroy();
    }
  }

  /** Drops the TCP connection without closing the stream (a crashed client). */
  kill(): void {
    this.socket.destroy();
  }
}

function saslCondition(el: Element): string {
  return el.elements()[0]?.name ?? el.name;
}
