/**
 * The element model shared by every XML protocol (XMPP stanzas, CSTA messages).
 *
 * Names are namespace-aware: `name` is the local name and `ns` the namespace URI ('' for none);
 * prefixes are not kept, the serializer chooses them. Attributes without a namespace are keyed by
 * their local name; `xml:lang` and other `xml:` attributes by `xml:NAME`; attributes in any other
 * namespace by Clark notation `{URI}NAME`.
 */
export type Node = Element | string;

export const XML_NS = 'http://www.w3.org/XML/1998/namespace';

export class Element {
  readonly name: string;
  ns: string;
  readonly attrs: Record<string, string>;
  readonly children: Node[];

  constructor(name: string, ns = '', attrs: Record<string, string | undefined> = {}, children: Node[] = []) {
    this.name = name;
    this.ns = ns;
    this.attrs = {};
    for (const key of Object.keys(attrs)) {
      const value = attrs[key];
      if (value !== undefined) this.attrs[key] = value;
    }
    this.children = children;
  }

  attr(key: string): string | undefined {
    return this.attrs[key];
  }

  setAttr(key: string, value: string | undefined): this {
    if (value === undefined) delete this.attrs[key];
    else this.attrs[key] = value;
    return this;
  }

  /** Appends a child (element or text) and returns this element, for chaining. */
  append(...nodes: Node[]): this {
    for (const node of nodes) this.children.push(node);
    return this;
  }

  /** Creates, appends and returns a child element; its namespace defaults to this element's. */
  c(name: string, attrs: Record<string, string | undefined> = {}, ns: string = this.ns): Element {
    const child = new Element(name, ns, attrs);
    this.children.push(child);
    return child;
  }

  /** First child element with this local name (and namespace, when given). */
  getChild(name: string, ns?: string): Element | undefined {
    for (const child of this.children) {
      if (typeof child !== 'string' && child.name === name && (ns === undefined || child.ns === ns))
        return child;
    }
    return undefined;
  }

  getChildren(name?: string, ns?: string): Element[] {
    const out: Element[] = [];
    for (const child of this.children) {
      if (
        typeof child !== 'string' &&
        (name === undefined || child.name === name) &&
        (ns === undefined || child.ns === ns)
      ) {
        out.push(child);
      }
    }
    return out;
  }

  /** Child elements only, in document order. */
  elements(): Element[] {
    return this.getChildren();
  }

  /** First child element in a namespace, whatever its name (the payload of an iq, say). */
  getChildByNs(ns: string): Element | undefined {
    for (const child of this.children) if (typeof child !== 'string' && child.ns === ns) return child;
    return undefined;
  }

  /** Concatenated text of the direct text children. */
  text(): string {
    let out = '';
    for (const child of this.children) if (typeof child === 'string') out += child;
    return out;
  }

  getChildText(name: string, ns?: string): string | undefined {
    return this.getChild(name, ns)?.text();
  }

  /** Follows a path of local names, ignoring namespaces: el.find('a', 'b') is el/a/b. */
  find(...path: string[]): Element | undefined {
    let current: Element | undefined = this;
    for (const step of path) {
      current = current.getChild(step);
      if (current === undefined) return undefined;
    }
    return current;
  }

  /** A deep copy. */
  clone(): Element {
    return new Element(
      this.name,
      this.ns,
      { ...this.attrs },
      this.children.map((c) => (typeof c === 'string' ? c : c.clone())),
    );
  }
}

/** Shorthand constructor: el('message', {to: 'a@b'}, 'jabber:client', child1, 'text'). */
export function el(
  name: string,
  attrs: Record<string, string | undefined> = {},
  ns = '',
  ...children: Node[]
) {
  return new Element(name, ns, attrs, children);
}
