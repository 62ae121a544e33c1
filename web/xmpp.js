// A minimal XMPP client for the browser: XMPP over WebSocket (RFC 7395), SASL SCRAM-SHA-256 / SCRAM-SHA-1
// (RFC 5802, WebCrypto) or PLAIN, resource binding, iq with replies, and events for the rest.
// Plain ES module, no dependencies.

const NS = {
  framing: 'urn:ietf:params:xml:ns:xmpp-framing',
  stream: 'http://etherx.jabber.org/streams',
  sasl: 'urn:ietf:params:xml:ns:xmpp-sasl',
  bind: 'urn:ietf:params:xml:ns:xmpp-bind',
  client: 'jabber:client',
};

/** Escapes text for XML content and attribute values. */
export function esc(s) {
  return String(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** Builds `<name a="v">inner</name>`; attributes with undefined values are left out. */
export function xml(name, attrs, inner = '') {
  let out = `<${name}`;
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) out += ` ${k}="${esc(v)}"`;
  return inner === '' ? `${out}/>` : `${out}>${inner}</${name}>`;
}

/** The bare JID (local@domain) of a JID. */
export function bare(jid) {
  return String(jid ?? '').split('/')[0];
}

/** The first child element with this local name (and namespace, when given). */
export function child(el, name, ns) {
  for (const c of el.children)
    if (c.localName === name && (ns === undefined || c.namespaceURI === ns)) return c;
  return undefined;
}

const utf8 = new TextEncoder();
const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)));
const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

async function hmac(hash, key, data) {
  const k = await crypto.subtle.importKey('raw', key, { name: 'HMAC', hash }, false, ['sign']);
  return new Uint8Array(
    await crypto.subtle.sign('HMAC', k, typeof data === 'string' ? utf8.encode(data) : data),
  );
}

/** One SCRAM exchange (RFC 5802) over WebCrypto; `hash` is 'SHA-1' or 'SHA-256'. */
export class Scram {
  constructor(hash, username, password) {
    this.hash = hash;
    this.password = password;
    const nonce = new Uint8Array(18);
    crypto.getRandomValues(nonce);
    this.nonce = b64(nonce);
    const name = username.replace(/=/g, '=3D').replace(/,/g, '=2C');
    this.clientFirstBare = `n=${name},r=${this.nonce}`;
  }

  first() {
    return `n,,${this.clientFirstBare}`;
  }

  async final(serverFirst) {
    const attrs = Object.fromEntries(serverFirst.split(',').map((p) => [p[0], p.slice(2)]));
    const iterations = Number(attrs.i);
    if (!attrs.r?.startsWith(this.nonce) || attrs.s === undefined || !(iterations > 0))
      throw new Error('bad SCRAM challenge');
    const bits = this.hash === 'SHA-1' ? 160 : 256;
    const pw = await crypto.subtle.importKey('raw', utf8.encode(this.password), 'PBKDF2', false, [
      'deriveBits',
    ]);
    const salted = new Uint8Array(
      await crypto.subtle.deriveBits(
        { name: 'PBKDF2', hash: this.hash, salt: unb64(attrs.s), iterations },
        pw,
        bits,
      ),
    );
    const clientKey = await hmac(this.hash, salted, 'Client Key');
    const storedKey = new Uint8Array(await crypto.subtle.digest(this.hash, clientKey));
    const withoutProof = `c=biws,r=${attrs.r}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const signature = await hmac(this.hash, storedKey, authMessage);
    const proof = clientKey.map((b, i) => b ^ signature[i]);
    const serverKey = await hmac(this.hash, salted, 'Server Key');
    this.serverSignature = b64(await hmac(this.hash, serverKey, authMessage));
    return `${withoutProof},p=${b64(proof)}`;
  }

  verify(serverFinal) {
    return serverFinal === `v=${this.serverSignature}`;
  }
}

/**
 * An XMPP session over one WebSocket. Events (EventTarget): 'stanza' (detail: Element) for every stanza
 * that is not the answer to one of our iqs, 'close' (detail: reason text).
 */
export class XmppClient extends EventTarget {
  constructor() {
    super();
    this.ws = undefined;
    this.jid = undefined;
    this.domain = undefined;
    this.pending = new Map();
    this.nextId = 1;
    this.queue = [];
    this.waiters = [];
    this.mechanismUsed = undefined;
  }

  /** Connects, authenticates and binds a resource. Resolves with the bound full JID. */
  async connect(url, jid, password, resource = 'web') {
    const [local, domain] = bare(jid).split('@');
    if (!local || !domain) throw new Error('Give a JID like alice@localhost');
    this.domain = domain;
    this.ws = new WebSocket(url, 'xmpp');
    this.ws.addEventListener('message', (e) => this.onFrame(e.data));
    this.ws.addEventListener('close', () => this.onClose('connection closed'));
    await new Promise((resolve, reject) => {
      this.ws.addEventListener('open', resolve, { once: true });
      this.ws.addEventListener('error', () => reject(new Error(`cannot connect to ${url}`)), { once: true });
    });
    let features = await this.openStream();
    const offered = [...(child(features, 'mechanisms', NS.sasl)?.children ?? [])].map((m) => m.textContent);
    await this.authenticate(offered, local, password);
    features = await this.openStream();
    if (child(features, 'bind', NS.bind) === undefined)
      throw new Error('the server offers no resource binding');
    const result = await this.iq(
      'set',
      undefined,
      xml('bind', { xmlns: NS.bind }, xml('resource', {}, esc(resource))),
    );
    this.jid = child(child(result, 'bind', NS.bind), 'jid')?.textContent ?? `${bare(jid)}/${resource}`;
    this.bound = true;
    for (const el of this.queue.splice(0)) this.dispatch(el);
    return this.jid;
  }

  async openStream() {
    this.sendRaw(xml('open', { xmlns: NS.framing, to: this.domain, version: '1.0' }));
    const open = await this.next();
    if (open.localName !== 'open') throw new Error(`expected <open/>, got <${open.localName}/>`);
    const features = await this.next();
    if (features.localName !== 'features') throw new Error(`expected features, got <${features.localName}/>`);
    return features;
  }

  async authenticate(offered, username, password) {
    const scram = ['SCRAM-SHA-256', 'SCRAM-SHA-1'].find((m) => offered.includes(m));
    if (scram !== undefined && globalThis.crypto?.subtle !== undefined) {
      const s = new Scram(scram === 'SCRAM-SHA-1' ? 'SHA-1' : 'SHA-256', username, password);
      this.sendRaw(xml('auth', { xmlns: NS.sasl, mechanism: scram }, btoa(s.first())));
      let answer = await this.next();
      if (answer.localName !== 'challenge') throw this.saslError(answer);
      const serverFirst = new TextDecoder().decode(unb64(answer.textContent.trim()));
      this.sendRaw(xml('response', { xmlns: NS.sasl }, btoa(await s.final(serverFirst))));
      answer = await this.next();
      if (answer.localName !== 'success') throw this.saslError(answer);
      const serverFinal = new TextDecoder().decode(unb64(answer.textContent.trim()));
      if (!s.verify(serverFinal)) throw new Error('the server could not prove it knows the password');
      this.mechanismUsed = scram;
      return;
    }
    if (offered.includes('PLAIN')) {
      const bytes = utf8.encode(`\0${username}\0${password}`);
      this.sendRaw(xml('auth', { xmlns: NS.sasl, mechanism: 'PLAIN' }, b64(bytes)));
      const answer = await this.next();
      if (answer.localName !== 'success') throw this.saslError(answer);
      this.mechanismUsed = 'PLAIN';
      return;
    }
    throw new Error(
      offered.length === 0
        ? 'The server offers no way to log in on this connection (it needs TLS, or allow_plain_loopback on loopback).'
        : `No supported login mechanism (server offers ${offered.join(', ')})`,
    );
  }

  saslError(el) {
    const condition = el.firstElementChild?.localName ?? el.localName;
    return new Error(condition === 'not-authorized' ? 'Wrong JID or password' : `Login failed: ${condition}`);
  }

  /** The next element during negotiation. */
  next(timeoutMs = 15000) {
    if (this.queue.length > 0) return Promise.resolve(this.queue.shift());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the server did not answer')), timeoutMs);
      this.waiters.push({
        resolve: (el) => {
          clearTimeout(timer);
          resolve(el);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  onFrame(data) {
    if (typeof data !== 'string') return;
    const doc = new DOMParser().parseFromString(data, 'text/xml');
    const el = doc.documentElement;
    if (el === null || el.getElementsByTagName('parsererror').length > 0) return;
    if (el.localName === 'close' && el.namespaceURI === NS.framing) {
      this.onClose('the server closed the stream');
      return;
    }
    if (el.localName === 'error' && el.namespaceURI === NS.stream) {
      this.onClose(`stream error: ${el.firstElementChild?.localName ?? 'unknown'}`);
      return;
    }
    if (!this.bound && el.localName === 'iq' && this.pending.has(el.getAttribute('id'))) {
      this.dispatch(el);
      return;
    }
    if (!this.bound) {
      const w = this.waiters.shift();
      if (w !== undefined) w.resolve(el);
      else this.queue.push(el);
      return;
    }
    this.dispatch(el);
  }

  dispatch(el) {
    const id = el.getAttribute('id');
    const type = el.getAttribute('type');
    if (el.localName === 'iq' && (type === 'result' || type === 'error') && this.pending.has(id)) {
      const p = this.pending.get(id);
      this.pending.delete(id);
      if (type === 'result') p.resolve(el);
      else {
        const cond = [...(child(el, 'error')?.children ?? [])].map((c) => c.localName).join(' ');
        p.reject(Object.assign(new Error(`iq error: ${cond}`), { stanza: el }));
      }
      return;
    }
    if (el.localName === 'iq' && type === 'get' && child(el, 'ping', 'urn:xmpp:ping') !== undefined) {
      // XEP-0199: the server checks that we are still here.
      this.send(xml('iq', { type: 'result', to: el.getAttribute('from') ?? undefined, id: id ?? undefined }));
      return;
    }
    if (el.localName === 'iq' && (type === 'get' || type === 'set')) {
      const handled = !this.dispatchEvent(new CustomEvent('iq', { detail: el, cancelable: true }));
      if (!handled) {
        this.send(
          xml(
            'iq',
            { type: 'error', to: el.getAttribute('from') ?? undefined, id: id ?? undefined },
            xml(
              'error',
              { type: 'cancel' },
              xml('service-unavailable', { xmlns: 'urn:ietf:params:xml:ns:xmpp-stanzas' }),
            ),
          ),
        );
      }
      return;
    }
    this.dispatchEvent(new CustomEvent('stanza', { detail: el }));
  }

  onClose(reason) {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.reject(new Error(reason));
    for (const p of this.pending.values()) p.reject(new Error(reason));
    this.pending.clear();
    try {
      this.ws?.close();
    } catch {
      // already closed
    }
    this.dispatchEvent(new CustomEvent('close', { detail: reason }));
  }

  sendRaw(text) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(text);
  }

  /** Sends a stanza given as XML text (the jabber:client namespace is added to its top element). */
  send(text) {
    this.sendRaw(text.replace(/^<(\w+)/, `<$1 xmlns="${NS.client}"`));
  }

  /** Sends an iq and resolves with the result stanza (rejects on error or after `timeoutMs`). */
  iq(type, to, inner, timeoutMs = 15000) {
    const id = `w${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error('no answer to iq'));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (el) => {
          clearTimeout(timer);
          resolve(el);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.send(xml('iq', { type, to, id }, inner));
    });
  }

  message(to, body) {
    this.send(xml('message', { to, type: 'chat', id: `m${this.nextId++}` }, xml('body', {}, esc(body))));
  }

  presence(attrs = {}, inner = '') {
    this.send(xml('presence', attrs, inner));
  }

  close() {
    this.sendRaw(xml('close', { xmlns: NS.framing }));
    this.onClose('logged out');
  }
}
