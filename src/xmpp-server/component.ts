/**
 * XEP-0114 external components: `jabber:component:accept` streams, the SHA-1 handshake with one secret
 * per component domain, then stanza exchange. The component owns its domain and every JID under it
 * (`1001@cti.localhost/x`), and may send only from those.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import {
  type Element,
  escapeAttr,
  POST_AUTH_LIMITS,
  serialize,
  type XmlError,
  XmlStreamReader,
} from '../xml/index.ts';
import { prepDomainpart, tryParseJid } from '../xmpp/jid.ts';
import { NS } from '../xmpp/ns.ts';
import { errorReply, mayAnswerWithError, type StreamErrorCondition, streamErrorXml } from '../xmpp/stanza.ts';
import type { ComponentLink, Router } from './router.ts';

export interface ComponentContext {
  router: Router;
  log: Logger;
  /** Secret per component domain. */
  secrets: ReadonlyMap<string, string>;
  onClose?: (connection: ComponentConnection) => void;
}

const CLOSE_GRACE_MS = 2000;

/** Component stanzas arrive in jabber:component:accept; inside the server everything is jabber:client. */
function toClientNs(el: Element): void {
  if (el.ns === NS.component) el.ns = NS.client;
  for (const child of el.children) if (typeof child !== 'string') toClientNs(child);
}

export class ComponentConnection implements ComponentLink {
  domain = '';
  private readonly ctx: ComponentContext;
  private readonly socket: Socket;
  private readonly reader: XmlStreamReader;
  private readonly log: Logger;
  private streamId = '';
  private headerSent = false;
  private authenticated = false;
  private closed = false;
  private closeTimer: NodeJS.Timeout | undefined;

  constructor(socket: Socket, ctx: ComponentContext) {
    this.ctx = ctx;
    this.socket = socket;
    this.log = ctx.log.child({ remote: `${socket.remoteAddress}:${socket.remotePort}`, part: 'component' });
    this.reader = new XmlStreamReader(
      {
        onStreamStart: (root) => this.guard(() => this.onStreamStart(root)),
        onStanza: (el) => this.guard(() => this.onStanza(el)),
        onStreamEnd: () => this.guard(() => this.close()),
        onError: (err: XmlError) => this.close(err.condition, err.message),
      },
      { root: { name: 'stream', ns: NS.stream } },
    );
    socket.setNoDelay(true);
    socket.on('error', (err) => this.log.debug({ err }, 'socket error'));
    socket.on('close', () => this.onSocketClose());
    socket.on('data', (chunk: Buffer) => this.reader.feed(chunk));
  }

  get isAuthenticated(): boolean {
    return this.authenticated;
  }

  deliver(stanza: Element): void {
    if (this.closed) return;
    // Written with jabber:client as the assumed default, so the stanza inherits the stream's
    // jabber:component:accept namespace: no per-stanza xmlns.
    this.write(serialize(stanza, NS.client));
  }

  private corked = false;

  /** Corked until the end of the tick: a burst of stanzas for the component leaves in one write. */
  private write(data: string): void {
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) return;
    if (!this.corked) {
      this.corked = true;
      socket.cork();
      process.nextTick(() => {
        this.corked = false;
        socket.uncork();
      });
    }
    socket.write(data);
  }

  close(condition?: StreamErrorCondition, text?: string): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.headerSent) this.sendHeader();
    if (condition !== undefined) {
      this.log.info({ condition, text, domain: this.domain }, 'component stream error');
      this.write(streamErrorXml(condition, text));
    }
    this.write('</stream:stream>');
    this.detach();
    this.socket.end();
    this.closeTimer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
    this.closeTimer.unref();
  }

  private detach(): void {
    if (this.authenticated) {
      this.authenticated = false;
      this.ctx.router.detachComponent(this);
      this.log.info({ domain: this.domain }, 'component disconnected');
    }
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.log.error({ err: e }, 'unexpected error handling component input');
      this.close('internal-server-error');
    }
  }

  private onSocketClose(): void {
    if (this.closeTimer !== undefined) clearTimeout(this.closeTimer);
    this.closed = true;
    this.detach();
    this.ctx.onClose?.(this);
  }

  private sendHeader(): void {
    this.streamId = randomUUID();
    this.write(
      `<?xml version='1.0'?><stream:stream xmlns='${NS.component}' xmlns:stream='${NS.stream}'` +
        ` id='${this.streamId}'${this.domain === '' ? '' : ` from='${escapeAttr(this.domain)}'`}>`,
    );
    this.headerSent = true;
  }

  private onStreamStart(root: Element): void {
    if (this.headerSent) {
      this.close('not-authorized', 'One stream per connection');
      return;
    }
    let domain: string | undefined;
    try {
      domain = prepDomainpart(root.attr('to') ?? '');
    } catch {
      domain = undefined;
    }
    if (domain !== undefined && this.ctx.secrets.has(domain)) this.domain = domain;
    this.sendHeader();
    if (domain === undefined || !this.ctx.secrets.has(domain)) {
      this.close('host-unknown', 'No component is configured for this domain');
    }
  }

  private onStanza(el: Element): void {
    if (this.closed) return;
    if (!this.authenticated) {
      if (el.name === 'handshake' && el.ns === NS.component) this.handshake(el.text().trim());
      else this.close('not-authorized', 'Handshake first');
      return;
    }
    if (el.name !== 'message' && el.name !== 'presence' && el.name !== 'iq') {
      this.close('unsupported-stanza-type');
      return;
    }
    if (el.ns !== NS.component && el.ns !== NS.client) {
      this.close('invalid-namespace');
      return;
    }
    toClientNs(el);
    const fromAttr = el.attr('from');
    if (fromAttr === undefined) {
      el.setAttr('from', this.domain);
    } else {
      const from = tryParseJid(fromAttr);
      if (from === undefined || from.domain !== this.domain) {
        // The component may speak only for its own domain.
        if (mayAnswerWithError(el)) {
          const reply = errorReply(
            el,
            'cancel',
            'not-allowed',
            `Component may send only from ${this.domain}`,
          );
          reply.setAttr('to', fromAttr);
          reply.setAttr('from', el.attr('to'));
          this.deliver(reply);
        }
        this.log.warn({ from: fromAttr, domain: this.domain }, 'component sent from a foreign JID');
        return;
      }
      el.setAttr('from', from.toString());
    }
    const toAttr = el.attr('to');
    if (toAttr !== undefined) {
      const to = tryParseJid(toAttr);
      if (to === undefined) {
        if (mayAnswerWithError(el)) this.deliver(errorReply(el, 'modify', 'jid-malformed'));
        return;
      }
      el.setAttr('to', to.toString());
    }
    this.ctx.router.fromComponent(el);
  }

  private handshake(digest: string): void {
    const secret = this.ctx.secrets.get(this.domain);
    const expected = createHash('sha1')
      .update(this.streamId + (secret ?? ''))
      .digest('hex');
    const given = Buffer.from(digest.toLowerCase(), 'utf8');
    const ok =
      secret !== undefined &&
      given.length === expected.length &&
      timingSafeEqual(given, Buffer.from(expected));
    if (!ok) {
      this.close('not-authorized', 'Invalid handshake');
      return;
    }
    if (!this.ctx.router.attachComponent(this)) {
      this.close('conflict', 'This component is already connected');
      return;
    }
    this.authenticated = true;
    this.reader.setLimits(POST_AUTH_LIMITS);
    this.write('<handshake/>');
    this.log.info({ domain: this.domain }, 'component connected');
    this.ctx.router.componentReady(this);
  }
}
