/**
 * XEP-0115 Entity Capabilities on the server side: what each available client resource supports, so
 * the PEP service can filter notifications on "NODE+notify" features (XEP-0163 §5.3, XEP-0060 §9.2).
 *
 * A presence with <c hash node ver/> whose ver is not known yet makes the server ask that resource
 * (disco#info on node#ver) once. With a hash the server supports, the answer is verified (§5.4) and,
 * when it matches, cached for every resource that advertises the same ver. Without a hash, with an
 * unknown one, or with a mismatch, the features count for that resource alone (§5.4 2.3 and 3.9).
 */
import { createHash, randomBytes } from 'node:crypto';
import { Element } from '../xml/index.ts';
import { NS } from '../xmpp/ns.ts';

export const CAPS_NS = 'http://jabber.org/protocol/caps';
const DATA_FORMS_NS = 'jabber:x:data';

/** XEP-0115 names (IANA hash function textual names) -> node crypto names. */
const HASHES: Record<string, string> = {
  md5: 'md5',
  'sha-1': 'sha1',
  'sha-224': 'sha224',
  'sha-256': 'sha256',
  'sha-384': 'sha384',
  'sha-512': 'sha512',
};

/** "i;octet" collation (RFC 4790 §9.3): compare the UTF-8 bytes. */
function octetCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function hasDuplicates(values: string[]): boolean {
  return new Set(values).size !== values.length;
}

/**
 * The §5.1 verification string S of a disco#info <query/>, or undefined when the answer is ill-formed
 * in the sense of §5.4 (duplicate identities, features or FORM_TYPEs).
 */
export function verificationString(query: Element): string | undefined {
  const identities = query
    .getChildren('identity', NS.discoInfo)
    .map(
      (i) =>
        `${i.attr('category') ?? ''}/${i.attr('type') ?? ''}/${i.attr('xml:lang') ?? ''}/${i.attr('name') ?? ''}`,
    );
  const features = query.getChildren('feature', NS.discoInfo).map((f) => f.attr('var') ?? '');
  if (hasDuplicates(identities) || hasDuplicates(features)) return undefined;
  let s = '';
  for (const identity of identities.sort(octetCompare)) s += `${identity}<`;
  for (const feature of features.sort(octetCompare)) s += `${feature}<`;
  const forms: { formType: string; fields: { name: string; values: string[] }[] }[] = [];
  for (const x of query.getChildren('x', DATA_FORMS_NS)) {
    let formType: string | undefined;
    let formTypeOk = false;
    const fields: { name: string; values: string[] }[] = [];
    for (const field of x.getChildren('field', DATA_FORMS_NS)) {
      const values = field.getChildren('value', DATA_FORMS_NS).map((v) => v.text());
      const name = field.attr('var') ?? '';
      if (name === 'FORM_TYPE') {
        if (new Set(values).size > 1) return undefined;
        formType = values[0];
        formTypeOk = field.attr('type') === 'hidden';
      } else {
        fields.push({ name, values });
      }
    }
    // §5.4 3.6: a form without a hidden FORM_TYPE is ignored.
    if (formType === undefined || !formTypeOk) continue;
    forms.push({ formType, fields });
  }
  if (hasDuplicates(forms.map((f) => f.formType))) return undefined;
  for (const form of forms.sort((a, b) => octetCompare(a.formType, b.formType))) {
    s += `${form.formType}<`;
    for (const field of form.fields.sort((a, b) => octetCompare(a.name, b.name))) {
      s += `${field.name}<`;
      for (const value of field.values.sort(octetCompare)) s += `${value}<`;
    }
  }
  return s;
}

/** The verification string hashed and Base64-encoded (§5.1 step 9); undefined for an unknown hash. */
export function capsHash(s: string, hash: string): string | undefined {
  const algorithm = HASHES[hash.toLowerCase()];
  if (algorithm === undefined) return undefined;
  return createHash(algorithm).update(s, 'utf8').digest('base64');
}

export function isSupportedHash(hash: string | undefined): boolean {
  return hash !== undefined && HASHES[hash.toLowerCase()] !== undefined;
}

/** The caps a presence advertises, if any. */
export function readCaps(
  presence: Element,
): { node: string; ver: string; hash: string | undefined } | undefined {
  const c = presence.getChild('c', CAPS_NS);
  const node = c?.attr('node');
  const ver = c?.attr('ver');
  if (c === undefined || node === undefined || ver === undefined || node === '' || ver === '')
    return undefined;
  return { node, ver, hash: c.attr('hash') };
}

export interface CapsOptions {
  /** The server's domain: disco requests come from it and answers go to it. */
  domain: string;
  /** Sends a stanza (the router's route). */
  send: (stanza: Element) => void;
  /** Called when a resource's features became known after its presence (not for a cache hit). */
  onResolved: (jid: string) => void;
  /** Verified ver strings kept (least recently used dropped first). */
  cacheSize?: number;
  /** How long to wait for a disco#info answer. */
  timeoutMs?: number;
  /** Features kept per answer; a longer list is cut (the rest is of no use to the server). */
  maxFeatures?: number;
}

interface Pending {
  jid: string;
  ver: string;
  hash: string | undefined;
  timer: NodeJS.Timeout;
}

/**
 * Features per available full JID, from caps. The router tells it about presences and departures and
 * hands it the disco#info answers addressed to the server.
 */
export class CapsTracker {
  private readonly options: Required<CapsOptions>;
  /** `hash ver` -> features, verified. Map order doubles as recency order. */
  private readonly cache = new Map<string, ReadonlySet<string>>();
  /** full JID -> what it advertised, and its features once known. */
  private readonly resources = new Map<
    string,
    { ver: string; hash: string | undefined; features: ReadonlySet<string> | undefined }
  >();
  /** disco id -> request. */
  private readonly pending = new Map<string, Pending>();
  /** full JID -> the id of its request in flight (at most one per resource). */
  private readonly pendingByJid = new Map<string, string>();

  constructor(options: CapsOptions) {
    this.options = { cacheSize: 4096, timeoutMs: 30_000, maxFeatures: 2000, ...options };
  }

  /** Features of an available resource, or undefined when unknown (no caps, or not answered yet). */
  features(jid: string): ReadonlySet<string> | undefined {
    return this.resources.get(jid)?.features;
  }

  /** Does the resource want notifications for this node (XEP-0060 §9.2 filtered notifications)? */
  wantsNotify(jid: string, node: string): boolean {
    return this.features(jid)?.has(`${node}+notify`) ?? false;
  }

  /**
   * An available presence from `jid`. Returns true when the resource's features are known now (or it
   * advertises no caps), false when a disco#info request went out and `onResolved` will follow.
   */
  observe(jid: string, presence: Element): boolean {
    const caps = readCaps(presence);
    if (caps === undefined) {
      this.resources.delete(jid);
      return true;
    }
    const current = this.resources.get(jid);
    if (current !== undefined && current.ver === caps.ver && current.hash === caps.hash) {
      if (current.features !== undefined) return true;
      if (this.isPendingFor(jid)) return false;
    }
    const key = `${caps.hash ?? ''} ${caps.ver}`;
    const cached = isSupportedHash(caps.hash) ? this.cache.get(key) : undefined;
    if (cached !== undefined) {
      this.cache.delete(key);
      this.cache.set(key, cached);
      this.resources.set(jid, { ver: caps.ver, hash: caps.hash, features: cached });
      return true;
    }
    this.resources.set(jid, { ver: caps.ver, hash: caps.hash, features: undefined });
    this.cancelFor(jid);
    const id = `caps-${randomBytes(6).toString('hex')}`;
    const timer = setTimeout(() => this.cancelFor(jid), this.options.timeoutMs);
    timer.unref();
    this.pending.set(id, { jid, ver: caps.ver, hash: caps.hash, timer });
    this.pendingByJid.set(jid, id);
    const iq = new Element('iq', NS.client, { type: 'get', id, from: this.options.domain, to: jid });
    iq.c('query', { node: `${caps.node}#${caps.ver}` }, NS.discoInfo);
    this.options.send(iq);
    return false;
  }

  private isPendingFor(jid: string): boolean {
    return this.pendingByJid.has(jid);
  }

  private cancelFor(jid: string): void {
    const id = this.pendingByJid.get(jid);
    if (id === undefined) return;
    this.pendingByJid.delete(jid);
    const p = this.pending.get(id);
    if (p !== undefined) clearTimeout(p.timer);
    this.pending.delete(id);
  }

  /** Does the resource want notifications of any node at all? */
  hasInterests(jid: string): boolean {
    const features = this.features(jid);
    if (features === undefined) return false;
    for (const f of features) if (f.endsWith('+notify')) return true;
    return false;
  }

  /** The resource went unavailable or away. */
  forget(jid: string): void {
    this.resources.delete(jid);
    this.cancelFor(jid);
  }

  /** An iq result or error addressed to the server; true when it answered one of our requests. */
  handleResponse(iq: Element): boolean {
    const id = iq.attr('id');
    if (id === undefined) return false;
    const request = this.pending.get(id);
    if (request === undefined || iq.attr('from') !== request.jid) return false;
    this.cancelFor(request.jid);
    const resource = this.resources.get(request.jid);
    if (resource === undefined || resource.ver !== request.ver) return true;
    const query = iq.attr('type') === 'result' ? iq.getChild('query', NS.discoInfo) : undefined;
    const features = new Set<string>();
    if (query !== undefined) {
      for (const f of query.getChildren('feature', NS.discoInfo)) {
        const name = f.attr('var');
        if (name !== undefined && features.size < this.options.maxFeatures) features.add(name);
      }
    }
    resource.features = features;
    if (query !== undefined && request.hash !== undefined) {
      const s = verificationString(query);
      if (s !== undefined && capsHash(s, request.hash) === request.ver)
        this.remember(`${request.hash} ${request.ver}`, features);
    }
    this.options.onResolved(request.jid);
    return true;
  }

  private remember(key: string, features: ReadonlySet<string>): void {
    this.cache.delete(key);
    this.cache.set(key, features);
    while (this.cache.size > this.options.cacheSize) {
      const oldest = this.cache.keys().next().value;
      if (oldest === undefined) break;
      this.cache.delete(oldest);
    }
  }

  get cachedVers(): number {
    return this.cache.size;
  }

  /** Stops every timer (server shutdown). */
  close(): void {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    this.pendingByJid.clear();
  }
}
