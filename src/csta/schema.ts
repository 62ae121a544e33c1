/**
 * A small declarative mapping between CSTA XML elements and typed objects. Each message is described
 * once as a sequence of fields in XSD order; decoding and encoding both follow that description, so
 * the element order on output is the XSD order whatever order the peer used.
 *
 * Tolerance rules, in one place:
 * - children are matched by local name, namespaces are ignored (csta.md §1);
 * - a field may have alternative spellings (`aliases`) accepted on input; output uses the XSD name;
 * - children that match no field, and optional fields whose content does not decode, are kept as
 *   `$unknown` (with the field they followed) and written back at the same place;
 * - attributes of a child (DeviceID typeOfNumber, mediaClass, …) are kept in `$attrs` by field name;
 * - a field can be limited to some editions; it is decoded always and emitted only in those.
 */
import { Element } from '../xml/index.ts';

export type Edition = 'ed2' | 'ed3' | 'ed4' | 'ed5' | 'ed6';

export class CstaDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CstaDecodeError';
  }
}

export class CstaEncodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CstaEncodeError';
  }
}

export interface DecodeContext {
  /** Reports tolerated problems (invalid enum values mapped, undecodable optional fields kept raw). */
  log: (message: string) => void;
  path: string;
}

export interface EncodeContext {
  /** Namespace of the CSTA elements written. */
  ns: string;
  edition: Edition;
}

export interface Codec<T> {
  decode(el: Element, ctx: DecodeContext): T;
  /** Fills `el`, which already has its name and namespace. */
  encode(el: Element, value: T, ctx: EncodeContext): void;
}

export interface Field<T, O extends boolean, R extends boolean> {
  readonly codec: Codec<T>;
  readonly optional: O;
  readonly repeated: R;
  readonly aliases: readonly string[];
  readonly editions: readonly Edition[] | undefined;
}

interface FieldOptions {
  aliases?: readonly string[];
  /** Editions in which the field is written; decoded in every edition. */
  editions?: readonly Edition[];
}

// biome-ignore lint/suspicious/noExplicitAny: field collections are heterogeneous by design
export type AnyField = Field<any, boolean, boolean>;
export type Shape = Record<string, AnyField>;

export function req<T>(codec: Codec<T>, options: FieldOptions = {}): Field<T, false, false> {
  return {
    codec,
    optional: false,
    repeated: false,
    aliases: options.aliases ?? [],
    editions: options.editions,
  };
}

export function opt<T>(codec: Codec<T>, options: FieldOptions = {}): Field<T, true, false> {
  return {
    codec,
    optional: true,
    repeated: false,
    aliases: options.aliases ?? [],
    editions: options.editions,
  };
}

/** A child that may repeat directly inside its parent; decoded as an array (absent when none). */
export function many<T>(codec: Codec<T>, options: FieldOptions = {}): Field<T, true, true> {
  return {
    codec,
    optional: true,
    repeated: true,
    aliases: options.aliases ?? [],
    editions: options.editions,
  };
}

/** An element that matched no field, with the field it followed (null: before every field). */
export interface UnknownChild {
  after: string | null;
  element: Element;
}

/** What a decoded object keeps beyond its typed fields, so that re-encoding loses nothing. */
export interface Preserved {
  $unknown?: UnknownChild[];
  $attrs?: Record<string, Record<string, string>>;
}

type FieldValue<F> = F extends Field<infer T, boolean, infer R> ? (R extends true ? T[] : T) : never;
type RequiredKeys<S> = { [K in keyof S]: S[K] extends { optional: false } ? K : never }[keyof S];
type OptionalKeys<S> = Exclude<keyof S, RequiredKeys<S>>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};

export type InferShape<S extends Shape> = Simplify<
  { [K in RequiredKeys<S>]: FieldValue<S[K]> } & { [K in OptionalKeys<S>]?: FieldValue<S[K]> } & Preserved
>;

export type Infer<C> = C extends Codec<infer T> ? T : never;

// ---- retargeting of kept elements -----------------------------------------------------------------

const CSTA_NS_PATTERN = /ecma-323\/csta|ecma-354\/appl_session/;

export function isCstaNamespace(ns: string): boolean {
  return CSTA_NS_PATTERN.test(ns);
}

/**
 * A copy of a kept element for output: elements in a CSTA namespace (any edition or spelling) or in
 * no namespace move to the output namespace; vendor content inside `private` keeps its own.
 */
export function retarget(element: Element, ns: string, insidePrivate = false): Element {
  const move = isCstaNamespace(element.ns) || (element.ns === '' && !insidePrivate);
  const copy = new Element(element.name, move ? ns : element.ns, { ...element.attrs });
  const childInsidePrivate = insidePrivate || (move && element.name === 'private');
  for (const child of element.children) {
    copy.children.push(typeof child === 'string' ? child : retarget(child, ns, childInsidePrivate));
  }
  return copy;
}

function appendTo<T>(items: T[] | undefined, item: T): T[] {
  if (items === undefined) return [item];
  items.push(item);
  return items;
}

function isBlank(s: string): boolean {
  return s.trim() === '';
}

// ---- leaf codecs -------------------------------------------------------------------------------------

/** Text content, exactly as sent (DeviceIDs, callIDs, free text). */
export const text: Codec<string> = {
  decode: (el) => el.text(),
  encode: (el, value) => {
    if (value !== '') el.append(value);
  },
};

export const bool: Codec<boolean> = {
  decode: (el, ctx) => {
    const v = el.text().trim();
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw new CstaDecodeError(`${ctx.path}: '${v}' is not a boolean`);
  },
  encode: (el, value) => {
    el.append(value ? 'true' : 'false');
  },
};

export const int: Codec<number> = {
  decode: (el, ctx) => {
    const v = el.text().trim();
    if (!/^[+-]?[0-9]{1,15}$/.test(v)) throw new CstaDecodeError(`${ctx.path}: '${v}' is not an integer`);
    return Number(v);
  },
  encode: (el, value) => {
    el.append(String(Math.trunc(value)));
  },
};

/** Presence-only element such as `<unspecified/>` or `<notKnown/>`. */
export const empty: Codec<true> = {
  decode: () => true,
  encode: () => {},
};

/** The element itself, kept whole (extensions, vendor data, structures not modelled field by field). */
export const raw: Codec<Element> = {
  decode: (el) => el,
  encode: (el, value, ctx) => {
    for (const [k, v] of Object.entries(value.attrs)) el.attrs[k] = v;
    const insidePrivate = value.name === 'private';
    for (const child of value.children) {
      el.children.push(typeof child === 'string' ? child : retarget(child, ctx.ns, insidePrivate));
    }
  },
};

/**
 * An enumeration. An invalid value becomes `fallback` when one is given (logged), otherwise it is a
 * decode error (which keeps an optional field raw in `$unknown`).
 */
export function enumOf<const V extends string>(values: readonly V[], fallback?: V): Codec<V> {
  const set = new Set<string>(values);
  return {
    decode: (el, ctx) => {
      const v = el.text().trim();
      if (set.has(v)) return v as V;
      if (fallback !== undefined) {
        ctx.log(`${ctx.path}: invalid value '${v}' read as '${fallback}'`);
        return fallback;
      }
      throw new CstaDecodeError(`${ctx.path}: '${v}' is not one of ${values.join('|')}`);
    },
    encode: (el, value) => {
      el.append(value);
    },
  };
}

// ---- structured codecs -------------------------------------------------------------------------------

function nameIndex(shape: Shape): Map<string, string> {
  const index = new Map<string, string>();
  for (const [key, field] of Object.entries(shape)) {
    index.set(key, key);
    for (const alias of field.aliases) index.set(alias, key);
  }
  return index;
}

function writes(field: AnyField, edition: Edition): boolean {
  return field.editions === undefined || field.editions.includes(edition);
}

export interface SeqCodec<S extends Shape> extends Codec<InferShape<S>> {
  readonly shape: S;
}

/** An XSD sequence of named children. */
export function seq<S extends Shape>(shape: S): SeqCodec<S> {
  const index = nameIndex(shape);
  const keys = Object.keys(shape);
  return {
    shape,
    decode(el, ctx) {
      const out: Record<string, unknown> = {};
      let unknown: UnknownChild[] | undefined;
      let attrs: Record<string, Record<string, string>> | undefined;
      let last: string | null = null;
      for (const child of el.children) {
        if (typeof child === 'string') continue;
        const key = index.get(child.name);
        const field = key === undefined ? undefined : shape[key];
        if (key === undefined || field === undefined || (!field.repeated && key in out)) {
          unknown = appendTo(unknown, { after: last, element: child });
          continue;
        }
        const childCtx = { log: ctx.log, path: `${ctx.path}/${child.name}` };
        let value: unknown;
        try {
          value = field.codec.decode(child, childCtx);
        } catch (e) {
          if (!field.optional || !(e instanceof CstaDecodeError)) throw e;
          ctx.log(`${e.message} (kept unparsed)`);
          unknown = appendTo(unknown, { after: last, element: child });
          continue;
        }
        if (field.repeated) {
          let items = out[key] as unknown[] | undefined;
          if (items === undefined) {
            items = [];
            out[key] = items;
          }
          items.push(value);
        } else {
          out[key] = value;
          if (Object.keys(child.attrs).length > 0) {
            attrs ??= {};
            attrs[key] = { ...child.attrs };
          }
        }
        last = key;
      }
      for (const key of keys) {
        if (!shape[key]!.optional && !(key in out)) {
          throw new CstaDecodeError(`${ctx.path}: required <${key}> is missing`);
        }
      }
      if (unknown !== undefined) out.$unknown = unknown;
      if (attrs !== undefined) out.$attrs = attrs;
      return out as InferShape<S>;
    },
    encode(el, value, ctx) {
      const record = value as Record<string, unknown> & Preserved;
      const unknown = record.$unknown ?? [];
      const attrs = record.$attrs;
      const emitUnknown = (after: string | null) => {
        for (const u of unknown) if (u.after === after) el.children.push(retarget(u.element, ctx.ns));
      };
      // Kept elements whose anchor field is absent now go before the extensions (or at the end).
      const orphans = unknown.filter((u) => u.after !== null && record[u.after] === undefined);
      const flushOrphans = () => {
        for (const u of orphans.splice(0)) el.children.push(retarget(u.element, ctx.ns));
      };
      emitUnknown(null);
      for (const key of keys) {
        const field = shape[key]!;
        const v = record[key];
        if (key === 'extensions') flushOrphans();
        if (v === undefined) {
          if (!field.optional) throw new CstaEncodeError(`<${el.name}>: required <${key}> is missing`);
          continue;
        }
        if (!writes(field, ctx.edition)) continue;
        const items = field.repeated ? (v as unknown[]) : [v];
        for (const item of items) {
          const child = new Element(key, ctx.ns);
          field.codec.encode(child, item, ctx);
          const a = field.repeated ? undefined : attrs?.[key];
          if (a !== undefined) Object.assign(child.attrs, a);
          el.children.push(child);
        }
        emitUnknown(key);
      }
      flushOrphans();
    },
  };
}

type ChoiceValue<S extends Record<string, Codec<unknown>>> = {
  [K in keyof S]: { [P in K]: Infer<S[K]> };
}[keyof S] &
  Preserved;

/** An XSD choice: exactly one of the alternatives, decoded as an object with that one key. */
export function choice<S extends Record<string, Codec<unknown>>>(
  alternatives: S,
  aliases: Record<string, keyof S & string> = {},
): Codec<ChoiceValue<S>> {
  const keys = Object.keys(alternatives);
  const index = new Map<string, string>(keys.map((k) => [k, k]));
  for (const [alias, key] of Object.entries(aliases)) index.set(alias, key);
  return {
    decode(el, ctx) {
      const out: Record<string, unknown> = {};
      let unknown: UnknownChild[] | undefined;
      let chosen: string | null = null;
      for (const child of el.children) {
        if (typeof child === 'string') continue;
        const key = index.get(child.name);
        if (chosen !== null || key === undefined) {
          unknown = appendTo(unknown, { after: chosen, element: child });
          continue;
        }
        out[key] = alternatives[key]!.decode(child, { log: ctx.log, path: `${ctx.path}/${child.name}` });
        if (Object.keys(child.attrs).length > 0) out.$attrs = { [key]: { ...child.attrs } };
        chosen = key;
      }
      if (chosen === null) {
        throw new CstaDecodeError(`${ctx.path}: none of ${keys.join('|')} is present`);
      }
      if (unknown !== undefined) out.$unknown = unknown;
      return out as ChoiceValue<S>;
    },
    encode(el, value, ctx) {
      const record = value as Record<string, unknown> & Preserved;
      const key = keys.find((k) => record[k] !== undefined);
      if (key === undefined) throw new CstaEncodeError(`<${el.name}>: none of ${keys.join('|')} is set`);
      for (const u of record.$unknown ?? [])
        if (u.after === null) el.children.push(retarget(u.element, ctx.ns));
      const child = new Element(key, ctx.ns);
      alternatives[key]!.encode(child, record[key], ctx);
      const a = record.$attrs?.[key];
      if (a !== undefined) Object.assign(child.attrs, a);
      el.children.push(child);
      for (const u of record.$unknown ?? [])
        if (u.after !== null) el.children.push(retarget(u.element, ctx.ns));
    },
  };
}

/** A wrapper element holding repeated items (`<connections><connectionListItem>…`); an array. */
export function list<T>(itemName: string, item: Codec<T>): Codec<T[]> {
  return {
    decode(el, ctx) {
      const out: T[] = [];
      for (const child of el.children) {
        if (typeof child === 'string') {
          if (!isBlank(child)) ctx.log(`${ctx.path}: text inside a list ignored`);
          continue;
        }
        if (child.name !== itemName) {
          ctx.log(`${ctx.path}: <${child.name}> inside a list of <${itemName}> ignored`);
          continue;
        }
        out.push(item.decode(child, { log: ctx.log, path: `${ctx.path}/${itemName}` }));
      }
      return out;
    },
    encode(el, value, ctx) {
      for (const v of value) {
        const child = new Element(itemName, ctx.ns);
        item.encode(child, v, ctx);
        el.children.push(child);
      }
    },
  };
}

/** Boolean flags in a fixed order (monitor filter groups, SystemRegister requestTypes). */
export function flags<const K extends string>(names: readonly K[]) {
  const shape = {} as { [P in K]: Field<boolean, true, false> };
  for (const n of names) shape[n] = opt(bool);
  return seq(shape);
}
