/**
 * Persistent state of the text server: accounts (SCRAM keys only, never a plaintext XMPP password),
 * rosters with subscription state, and bounded offline message queues.
 *
 * `SqliteStore` (better-sqlite3, one file in the data directory) is the real one; `MemoryStore` has the
 * same behaviour for unit tests. Both are synchronous: better-sqlite3 answers in microseconds and a
 * synchronous store keeps the routing code free of interleavings.
 */

import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { deriveScramCredentialsAsync, type ScramCredentials, type ScramHash } from '../xmpp/sasl.ts';

export interface AccountInfo {
  username: string;
  /** Phone extension (the voice server registers it as EXT@domain). */
  extension: string | undefined;
  /** SIP digest password, a separate credential the voice server needs in clear to check digests. */
  sipPassword: string | undefined;
}

export interface Account extends AccountInfo {
  scram: Record<ScramHash, ScramCredentials>;
}

export type Subscription = 'none' | 'to' | 'from' | 'both';

/** One roster entry with the RFC 6121 Appendix A state: subscription, Pending Out, Pending In, pre-approval. */
export interface RosterItem {
  jid: string;
  name: string | undefined;
  subscription: Subscription;
  /** Pending Out: the user asked for the contact's presence. */
  ask: boolean;
  /** Pending In: the contact asked for the user's presence; kept until the user answers. */
  pendingIn: boolean;
  /** Pre-approved (RFC 6121 §3.4): a later subscribe from the contact is approved at once. */
  approved: boolean;
  /** False for an entry that exists only to remember a Pending In request (not shown in the roster). */
  listed: boolean;
  groups: string[];
}

export interface OfflineMessage {
  xml: string;
  stamp: string;
}

/** XEP-0060 §4.5 access models a PEP node can have here ('roster' and 'authorize' are not offered). */
export type AccessModel = 'open' | 'presence' | 'whitelist';
export type SendLastPublishedItem = 'never' | 'on_sub' | 'on_sub_and_presence';

/** The node configuration a PEP node keeps (XEP-0060 §16.4.4 pubsub#node_config fields). */
export interface PepNodeConfig {
  accessModel: AccessModel;
  maxItems: number;
  persistItems: boolean;
  notifyRetract: boolean;
  sendLastPublishedItem: SendLastPublishedItem;
  title: string | undefined;
  type: string | undefined;
}

/** An explicit subscription (XEP-0060 §6.1) to a PEP node. */
export interface PepSubscription {
  node: string;
  /** The subscribed JID, bare or full, as the subscriber gave it (prepared). */
  jid: string;
  subid: string;
}

/** One published item: its payload element, serialized. */
export interface PepItem {
  id: string;
  xml: string;
  /** ISO 8601, when it was published. */
  stamp: string;
}

export interface Store {
  getAccount(username: string): Account | undefined;
  hasAccount(username: string): boolean;
  /** The account a phone extension belongs to (extensions are unique). */
  accountByExtension(extension: string): AccountInfo | undefined;
  listAccounts(): AccountInfo[];
  /** False when the account exists. Throws ExtensionInUseError for an extension already assigned. */
  createAccount(username: string, scram: Account['scram'], extras?: Partial<AccountInfo>): boolean;
  deleteAccount(username: string): boolean;
  setCredentials(username: string, scram: Account['scram']): boolean;
  setAccountExtras(
    username: string,
    extras: { extension?: string | null; sipPassword?: string | null },
  ): boolean;
  getRoster(username: string): RosterItem[];
  getRosterItem(username: string, jid: string): RosterItem | undefined;
  putRosterItem(username: string, item: RosterItem): void;
  deleteRosterItem(username: string, jid: string): void;
  /** False when the user's queue is full (`limit` messages). */
  pushOffline(username: string, message: OfflineMessage, limit: number): boolean;
  takeOffline(username: string): OfflineMessage[];
  /** PEP nodes of an account (XEP-0163), in creation order. */
  listPepNodes(owner: string): { node: string; config: PepNodeConfig }[];
  getPepNode(owner: string, node: string): PepNodeConfig | undefined;
  /** Creates a node or changes its configuration; items beyond a lower maxItems are dropped. */
  putPepNode(owner: string, node: string, config: PepNodeConfig): void;
  /** Deletes a node with its items; false when there was none. */
  deletePepNode(owner: string, node: string): boolean;
  /** Stores an item as the node's newest (replacing one with the same id), keeping the newest `maxItems`. */
  putPepItem(owner: string, node: string, item: PepItem, maxItems: number): void;
  /** Items oldest first: those with the given ids, or the newest `max`, or all. */
  getPepItems(owner: string, node: string, select?: { ids?: string[]; max?: number }): PepItem[];
  deletePepItem(owner: string, node: string, id: string): boolean;
  purgePepNode(owner: string, node: string): void;
  /** Explicit XEP-0060 subscriptions to an account's nodes (all nodes, or one), oldest first. */
  listPepSubscriptions(owner: string, node?: string): PepSubscription[];
  /** Adds or replaces the subscription of `jid` to a node. */
  putPepSubscription(owner: string, subscription: PepSubscription): void;
  deletePepSubscription(owner: string, node: string, jid: string): boolean;
  close(): void;
}

/** Both SCRAM key sets for a password (PBKDF2 runs off the event loop). */
export class ExtensionInUseError extends Error {
  override readonly name = 'ExtensionInUseError';
  readonly owner: string;
  constructor(extension: string, owner: string) {
    super(`extension ${extension} already belongs to ${owner}`);
    this.owner = owner;
  }
}

export async function credentialsFor(password: string): Promise<Account['scram']> {
  const salt = randomBytes(16);
  const [sha1, sha256] = await Promise.all([
    deriveScramCredentialsAsync('SHA-1', password, salt),
    deriveScramCredentialsAsync('SHA-256', password, salt),
  ]);
  return { 'SHA-1': sha1, 'SHA-256': sha256 };
}

function copyItem(item: RosterItem): RosterItem {
  return { ...item, groups: [...item.groups] };
}

export class MemoryStore implements Store {
  private readonly accounts = new Map<string, Account>();
  private readonly rosters = new Map<string, Map<string, RosterItem>>();
  private readonly offline = new Map<string, OfflineMessage[]>();
  /** owner -> node -> config, items (oldest first) and explicit subscriptions. */
  private readonly pep = new Map<
    string,
    Map<string, { config: PepNodeConfig; items: PepItem[]; subscriptions: PepSubscription[] }>
  >();

  getAccount(username: string): Account | undefined {
    return this.accounts.get(username);
  }
  hasAccount(username: string): boolean {
    return this.accounts.has(username);
  }
  accountByExtension(extension: string): AccountInfo | undefined {
    for (const { username, extension: ext, sipPassword } of this.accounts.values()) {
      if (ext === extension) return { username, extension: ext, sipPassword };
    }
    return undefined;
  }
  private checkExtension(extension: string | null | undefined, username: string): void {
    if (extension === undefined || extension === null) return;
    const owner = this.accountByExtension(extension);
    if (owner !== undefined && owner.username !== username)
      throw new ExtensionInUseError(extension, owner.username);
  }
  listAccounts(): AccountInfo[] {
    return [...this.accounts.values()]
      .map(({ username, extension, sipPassword }) => ({ username, extension, sipPassword }))
      .sort((a, b) => a.username.localeCompare(b.username));
  }
  createAccount(username: string, scram: Account['scram'], extras: Partial<AccountInfo> = {}): boolean {
    if (this.accounts.has(username)) return false;
    this.checkExtension(extras.extension, username);
    this.accounts.set(username, {
      username,
      extension: extras.extension,
      sipPassword: extras.sipPassword,
      scram,
    });
    return true;
  }
  deleteAccount(username: string): boolean {
    this.rosters.delete(username);
    this.offline.delete(username);
    this.pep.delete(username);
    return this.accounts.delete(username);
  }
  setCredentials(username: string, scram: Account['scram']): boolean {
    const account = this.accounts.get(username);
    if (account === undefined) return false;
    account.scram = scram;
    return true;
  }
  setAccountExtras(
    username: string,
    extras: { extension?: string | null; sipPassword?: string | null },
  ): boolean {
    const account = this.accounts.get(username);
    if (account === undefined) return false;
    this.checkExtension(extras.extension, username);
    if (extras.extension !== undefined) account.extension = extras.extension ?? undefined;
    if (extras.sipPassword !== undefined) account.sipPassword = extras.sipPassword ?? undefined;
    return true;
  }
  getRoster(username: string): RosterItem[] {
    return [...(this.rosters.get(username)?.values() ?? [])].map(copyItem);
  }
  getRosterItem(username: string, jid: string): RosterItem | undefined {
    const item = this.rosters.get(username)?.get(jid);
    return item === undefined ? undefined : copyItem(item);
  }
  putRosterItem(username: string, item: RosterItem): void {
    let roster = this.rosters.get(username);
    if (roster === undefined) {
      roster = new Map();
      this.rosters.set(username, roster);
    }
    roster.set(item.jid, copyItem(item));
  }
  deleteRosterItem(username: string, jid: string): void {
    this.rosters.get(username)?.delete(jid);
  }
  pushOffline(username: string, message: OfflineMessage, limit: number): boolean {
    let queue = this.offline.get(username);
    if (queue === undefined) {
      queue = [];
      this.offline.set(username, queue);
    }
    if (queue.length >= limit) return false;
    queue.push(message);
    return true;
  }
  takeOffline(username: string): OfflineMessage[] {
    const queue = this.offline.get(username) ?? [];
    this.offline.delete(username);
    return queue;
  }
  listPepNodes(owner: string): { node: string; config: PepNodeConfig }[] {
    return [...(this.pep.get(owner) ?? new Map()).entries()].map(([node, n]) => ({
      node,
      config: { ...n.config },
    }));
  }
  getPepNode(owner: string, node: string): PepNodeConfig | undefined {
    const n = this.pep.get(owner)?.get(node);
    return n === undefined ? undefined : { ...n.config };
  }
  putPepNode(owner: string, node: string, config: PepNodeConfig): void {
    let nodes = this.pep.get(owner);
    if (nodes === undefined) {
      nodes = new Map();
      this.pep.set(owner, nodes);
    }
    const n = nodes.get(node);
    if (n === undefined) nodes.set(node, { config: { ...config }, items: [], subscriptions: [] });
    else {
      n.config = { ...config };
      n.items.splice(0, Math.max(0, n.items.length - config.maxItems));
    }
  }
  deletePepNode(owner: string, node: string): boolean {
    return this.pep.get(owner)?.delete(node) ?? false;
  }
  putPepItem(owner: string, node: string, item: PepItem, maxItems: number): void {
    const n = this.pep.get(owner)?.get(node);
    if (n === undefined) return;
    const at = n.items.findIndex((i) => i.id === item.id);
    if (at >= 0) n.items.splice(at, 1);
    n.items.push({ ...item });
    n.items.splice(0, Math.max(0, n.items.length - maxItems));
  }
  getPepItems(owner: string, node: string, select: { ids?: string[]; max?: number } = {}): PepItem[] {
    const items = this.pep.get(owner)?.get(node)?.items ?? [];
    if (select.ids !== undefined)
      return items.filter((i) => select.ids!.includes(i.id)).map((i) => ({ ...i }));
    const from = select.max === undefined ? 0 : Math.max(0, items.length - select.max);
    return items.slice(from).map((i) => ({ ...i }));
  }
  deletePepItem(owner: string, node: string, id: string): boolean {
    const n = this.pep.get(owner)?.get(node);
    if (n === undefined) return false;
    const at = n.items.findIndex((i) => i.id === id);
    if (at < 0) return false;
    n.items.splice(at, 1);
    return true;
  }
  purgePepNode(owner: string, node: string): void {
    const n = this.pep.get(owner)?.get(node);
    if (n !== undefined) n.items = [];
  }
  listPepSubscriptions(owner: string, node?: string): PepSubscription[] {
    const out: PepSubscription[] = [];
    for (const [name, n] of this.pep.get(owner) ?? new Map<string, { subscriptions: PepSubscription[] }>())
      if (node === undefined || name === node) for (const sub of n.subscriptions) out.push({ ...sub });
    return out;
  }
  putPepSubscription(owner: string, subscription: PepSubscription): void {
    const n = this.pep.get(owner)?.get(subscription.node);
    if (n === undefined) return;
    n.subscriptions = n.subscriptions.filter((s) => s.jid !== subscription.jid);
    n.subscriptions.push({ ...subscription });
  }
  deletePepSubscription(owner: string, node: string, jid: string): boolean {
    const n = this.pep.get(owner)?.get(node);
    if (n === undefined) return false;
    const before = n.subscriptions.length;
    n.subscriptions = n.subscriptions.filter((s) => s.jid !== jid);
    return n.subscriptions.length !== before;
  }
  close(): void {}
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS accounts (
  username TEXT PRIMARY KEY,
  salt BLOB NOT NULL,
  iterations INTEGER NOT NULL,
  stored_key_sha1 BLOB NOT NULL,
  server_key_sha1 BLOB NOT NULL,
  stored_key_sha256 BLOB NOT NULL,
  server_key_sha256 BLOB NOT NULL,
  extension TEXT,
  sip_password TEXT,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE UNIQUE INDEX IF NOT EXISTS accounts_extension ON accounts (extension) WHERE extension IS NOT NULL;
CREATE TABLE IF NOT EXISTS roster (
  owner TEXT NOT NULL,
  jid TEXT NOT NULL,
  name TEXT,
  subscription TEXT NOT NULL,
  ask INTEGER NOT NULL,
  pending_in INTEGER NOT NULL,
  approved INTEGER NOT NULL,
  listed INTEGER NOT NULL,
  groups TEXT NOT NULL,
  PRIMARY KEY (owner, jid)
);
CREATE TABLE IF NOT EXISTS offline (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  owner TEXT NOT NULL,
  xml TEXT NOT NULL,
  stamp TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS offline_owner ON offline (owner, seq);
CREATE TABLE IF NOT EXISTS pep_nodes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  owner TEXT NOT NULL,
  node TEXT NOT NULL,
  config TEXT NOT NULL,
  UNIQUE (owner, node)
);
CREATE TABLE IF NOT EXISTS pep_items (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  owner TEXT NOT NULL,
  node TEXT NOT NULL,
  id TEXT NOT NULL,
  xml TEXT NOT NULL,
  stamp TEXT NOT NULL,
  UNIQUE (owner, node, id)
);
CREATE TABLE IF NOT EXISTS pep_subscriptions (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  owner TEXT NOT NULL,
  node TEXT NOT NULL,
  jid TEXT NOT NULL,
  subid TEXT NOT NULL,
  UNIQUE (owner, node, jid)
);
`;

/** A new PEP node's configuration (XEP-0163 §8: presence access, last item sent on presence). */
export const DEFAULT_PEP_NODE_CONFIG: PepNodeConfig = {
  accessModel: 'presence',
  maxItems: 1,
  persistItems: true,
  notifyRetract: true,
  sendLastPublishedItem: 'on_sub_and_presence',
  title: undefined,
  type: undefined,
};

/** A stored configuration; anything unreadable falls back to the defaults, field by field. */
function parseNodeConfig(text: string): PepNodeConfig {
  let raw: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null) raw = parsed as Record<string, unknown>;
  } catch {
    raw = {};
  }
  const pick = <T>(key: string, ok: (v: unknown) => v is T, fallback: T): T =>
    ok(raw[key]) ? (raw[key] as T) : fallback;
  const isString = (v: unknown): v is string => typeof v === 'string';
  return {
    accessModel: pick(
      'accessModel',
      (v): v is AccessModel => v === 'open' || v === 'presence' || v === 'whitelist',
      DEFAULT_PEP_NODE_CONFIG.accessModel,
    ),
    maxItems: pick('maxItems', (v): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1, 1),
    persistItems: pick('persistItems', (v): v is boolean => typeof v === 'boolean', true),
    notifyRetract: pick('notifyRetract', (v): v is boolean => typeof v === 'boolean', true),
    sendLastPublishedItem: pick(
      'sendLastPublishedItem',
      (v): v is SendLastPublishedItem => v === 'never' || v === 'on_sub' || v === 'on_sub_and_presence',
      'on_sub_and_presence',
    ),
    title: pick<string | undefined>('title', isString, undefined),
    type: pick<string | undefined>('type', isString, undefined),
  };
}

interface AccountRow {
  username: string;
  salt: Buffer;
  iterations: number;
  stored_key_sha1: Buffer;
  server_key_sha1: Buffer;
  stored_key_sha256: Buffer;
  server_key_sha256: Buffer;
  extension: string | null;
  sip_password: string | null;
}

interface RosterRow {
  jid: string;
  name: string | null;
  subscription: Subscription;
  ask: number;
  pending_in: number;
  approved: number;
  listed: number;
  groups: string;
}

function rowToItem(row: RosterRow): RosterItem {
  let groups: string[] = [];
  try {
    const parsed: unknown = JSON.parse(row.groups);
    if (Array.isArray(parsed)) groups = parsed.filter((g): g is string => typeof g === 'string');
  } catch {
    groups = [];
  }
  return {
    jid: row.jid,
    name: row.name ?? undefined,
    subscription: row.subscription,
    ask: row.ask === 1,
    pendingIn: row.pending_in === 1,
    approved: row.approved === 1,
    listed: row.listed === 1,
    groups,
  };
}

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly stmts;

  /** `path` is a file (accounts.sqlite in the data directory) or ':memory:'. */
  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    const db = this.db;
    this.stmts = {
      getAccount: db.prepare<[string], AccountRow>('SELECT * FROM accounts WHERE username = ?'),
      hasAccount: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM accounts WHERE username = ?'),
      listAccounts: db.prepare<[], AccountRow>('SELECT * FROM accounts ORDER BY username'),
      byExtension: db.prepare<[string], AccountRow>('SELECT * FROM accounts WHERE extension = ?'),
      insertAccount: db.prepare(
        `INSERT OR IGNORE INTO accounts (username, salt, iterations, stored_key_sha1, server_key_sha1,
         stored_key_sha256, server_key_sha256, extension, sip_password) VALUES (?,?,?,?,?,?,?,?,?)`,
      ),
      deleteAccount: db.prepare('DELETE FROM accounts WHERE username = ?'),
      deleteRoster: db.prepare('DELETE FROM roster WHERE owner = ?'),
      deleteOffline: db.prepare('DELETE FROM offline WHERE owner = ?'),
      setCredentials: db.prepare(
        `UPDATE accounts SET salt = ?, iterations = ?, stored_key_sha1 = ?, server_key_sha1 = ?,
         stored_key_sha256 = ?, server_key_sha256 = ? WHERE username = ?`,
      ),
      setExtension: db.prepare('UPDATE accounts SET extension = ? WHERE username = ?'),
      setSipPassword: db.prepare('UPDATE accounts SET sip_password = ? WHERE username = ?'),
      getRoster: db.prepare<[string], RosterRow>('SELECT * FROM roster WHERE owner = ? ORDER BY jid'),
      getRosterItem: db.prepare<[string, string], RosterRow>(
        'SELECT * FROM roster WHERE owner = ? AND jid = ?',
      ),
      putRosterItem: db.prepare(
        `INSERT OR REPLACE INTO roster (owner, jid, name, subscription, ask, pending_in, approved, listed, groups)
         VALUES (?,?,?,?,?,?,?,?,?)`,
      ),
      deleteRosterItem: db.prepare('DELETE FROM roster WHERE owner = ? AND jid = ?'),
      countOffline: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM offline WHERE owner = ?'),
      pushOffline: db.prepare('INSERT INTO offline (owner, xml, stamp) VALUES (?,?,?)'),
      takeOffline: db.prepare<[string], OfflineMessage>(
        'SELECT xml, stamp FROM offline WHERE owner = ? ORDER BY seq',
      ),
      listPepNodes: db.prepare<[string], { node: string; config: string }>(
        'SELECT node, config FROM pep_nodes WHERE owner = ? ORDER BY seq',
      ),
      getPepNode: db.prepare<[string, string], { config: string }>(
        'SELECT config FROM pep_nodes WHERE owner = ? AND node = ?',
      ),
      insertPepNode: db.prepare('INSERT OR IGNORE INTO pep_nodes (owner, node, config) VALUES (?,?,?)'),
      updatePepNode: db.prepare('UPDATE pep_nodes SET config = ? WHERE owner = ? AND node = ?'),
      deletePepNode: db.prepare('DELETE FROM pep_nodes WHERE owner = ? AND node = ?'),
      deletePepNodes: db.prepare('DELETE FROM pep_nodes WHERE owner = ?'),
      putPepItem: db.prepare(
        'INSERT OR REPLACE INTO pep_items (owner, node, id, xml, stamp) VALUES (?,?,?,?,?)',
      ),
      trimPepItems: db.prepare(
        `DELETE FROM pep_items WHERE owner = ? AND node = ? AND seq NOT IN
         (SELECT seq FROM pep_items WHERE owner = ? AND node = ? ORDER BY seq DESC LIMIT ?)`,
      ),
      allPepItems: db.prepare<[string, string], PepItem>(
        'SELECT id, xml, stamp FROM pep_items WHERE owner = ? AND node = ? ORDER BY seq',
      ),
      newestPepItems: db.prepare<[string, string, number], PepItem>(
        'SELECT id, xml, stamp FROM pep_items WHERE owner = ? AND node = ? ORDER BY seq DESC LIMIT ?',
      ),
      getPepItem: db.prepare<[string, string, string], PepItem & { seq: number }>(
        'SELECT seq, id, xml, stamp FROM pep_items WHERE owner = ? AND node = ? AND id = ?',
      ),
      deletePepItem: db.prepare('DELETE FROM pep_items WHERE owner = ? AND node = ? AND id = ?'),
      purgePepNode: db.prepare('DELETE FROM pep_items WHERE owner = ? AND node = ?'),
      deletePepItems: db.prepare('DELETE FROM pep_items WHERE owner = ?'),
      allPepSubscriptions: db.prepare<[string], PepSubscription>(
        'SELECT node, jid, subid FROM pep_subscriptions WHERE owner = ? ORDER BY seq',
      ),
      nodePepSubscriptions: db.prepare<[string, string], PepSubscription>(
        'SELECT node, jid, subid FROM pep_subscriptions WHERE owner = ? AND node = ? ORDER BY seq',
      ),
      putPepSubscription: db.prepare(
        'INSERT OR REPLACE INTO pep_subscriptions (owner, node, jid, subid) VALUES (?,?,?,?)',
      ),
      deletePepSubscription: db.prepare(
        'DELETE FROM pep_subscriptions WHERE owner = ? AND node = ? AND jid = ?',
      ),
      deleteNodeSubscriptions: db.prepare('DELETE FROM pep_subscriptions WHERE owner = ? AND node = ?'),
      deletePepSubscriptions: db.prepare('DELETE FROM pep_subscriptions WHERE owner = ?'),
    };
  }

  private static toAccount(row: AccountRow): Account {
    return {
      username: row.username,
      extension: row.extension ?? undefined,
      sipPassword: row.sip_password ?? undefined,
      scram: {
        'SHA-1': {
          salt: row.salt,
          iterations: row.iterations,
          storedKey: row.stored_key_sha1,
          serverKey: row.server_key_sha1,
        },
        'SHA-256': {
          salt: row.salt,
          iterations: row.iterations,
          storedKey: row.stored_key_sha256,
          serverKey: row.server_key_sha256,
        },
      },
    };
  }

  getAccount(username: string): Account | undefined {
    const row = this.stmts.getAccount.get(username);
    return row === undefined ? undefined : SqliteStore.toAccount(row);
  }
  hasAccount(username: string): boolean {
    return this.stmts.hasAccount.get(username) !== undefined;
  }
  accountByExtension(extension: string): AccountInfo | undefined {
    const row = this.stmts.byExtension.get(extension);
    return row === undefined
      ? undefined
      : {
          username: row.username,
          extension: row.extension ?? undefined,
          sipPassword: row.sip_password ?? undefined,
        };
  }
  private checkExtension(extension: string | null | undefined, username: string): void {
    if (extension === undefined || extension === null) return;
    const owner = this.accountByExtension(extension);
    if (owner !== undefined && owner.username !== username)
      throw new ExtensionInUseError(extension, owner.username);
  }
  listAccounts(): AccountInfo[] {
    return this.stmts.listAccounts.all().map((row) => ({
      username: row.username,
      extension: row.extension ?? undefined,
      sipPassword: row.sip_password ?? undefined,
    }));
  }
  createAccount(username: string, scram: Account['scram'], extras: Partial<AccountInfo> = {}): boolean {
    const a = scram['SHA-1'];
    const b = scram['SHA-256'];
    if (!a.salt.equals(b.salt) || a.iterations !== b.iterations)
      throw new Error('SHA-1 and SHA-256 credentials must share salt and iteration count');
    if (this.hasAccount(username)) return false;
    this.checkExtension(extras.extension, username);
    const info = this.stmts.insertAccount.run(
      username,
      a.salt,
      a.iterations,
      a.storedKey,
      a.serverKey,
      b.storedKey,
      b.serverKey,
      extras.extension ?? null,
      extras.sipPassword ?? null,
    );
    return info.changes === 1;
  }
  deleteAccount(username: string): boolean {
    return this.db.transaction(() => {
      this.stmts.deleteRoster.run(username);
      this.stmts.deleteOffline.run(username);
      this.stmts.deletePepItems.run(username);
      this.stmts.deletePepSubscriptions.run(username);
      this.stmts.deletePepNodes.run(username);
      return this.stmts.deleteAccount.run(username).changes === 1;
    })();
  }
  setCredentials(username: string, scram: Account['scram']): boolean {
    const a = scram['SHA-1'];
    const b = scram['SHA-256'];
    return (
      this.stmts.setCredentials.run(
        a.salt,
        a.iterations,
        a.storedKey,
        a.serverKey,
        b.storedKey,
        b.serverKey,
        username,
      ).changes === 1
    );
  }
  setAccountExtras(
    username: string,
    extras: { extension?: string | null; sipPassword?: string | null },
  ): boolean {
    if (!this.hasAccount(username)) return false;
    this.checkExtension(extras.extension, username);
    if (extras.extension !== undefined) this.stmts.setExtension.run(extras.extension, username);
    if (extras.sipPassword !== undefined) this.stmts.setSipPassword.run(extras.sipPassword, username);
    return true;
  }
  getRoster(username: string): RosterItem[] {
    return this.stmts.getRoster.all(username).map(rowToItem);
  }
  getRosterItem(username: string, jid: string): RosterItem | undefined {
    const row = this.stmts.getRosterItem.get(username, jid);
    return row === undefined ? undefined : rowToItem(row);
  }
  putRosterItem(username: string, item: RosterItem): void {
    this.stmts.putRosterItem.run(
      username,
      item.jid,
      item.name ?? null,
      item.subscription,
      item.ask ? 1 : 0,
      item.pendingIn ? 1 : 0,
      item.approved ? 1 : 0,
      item.listed ? 1 : 0,
      JSON.stringify(item.groups),
    );
  }
  deleteRosterItem(username: string, jid: string): void {
    this.stmts.deleteRosterItem.run(username, jid);
  }
  pushOffline(username: string, message: OfflineMessage, limit: number): boolean {
    return this.db.transaction(() => {
      const count = this.stmts.countOffline.get(username)?.n ?? 0;
      if (count >= limit) return false;
      this.stmts.pushOffline.run(username, message.xml, message.stamp);
      return true;
    })();
  }
  takeOffline(username: string): OfflineMessage[] {
    return this.db.transaction(() => {
      const messages = this.stmts.takeOffline.all(username);
      this.stmts.deleteOffline.run(username);
      return messages;
    })();
  }
  listPepNodes(owner: string): { node: string; config: PepNodeConfig }[] {
    return this.stmts.listPepNodes
      .all(owner)
      .map((r) => ({ node: r.node, config: parseNodeConfig(r.config) }));
  }
  getPepNode(owner: string, node: string): PepNodeConfig | undefined {
    const row = this.stmts.getPepNode.get(owner, node);
    return row === undefined ? undefined : parseNodeConfig(row.config);
  }
  putPepNode(owner: string, node: string, config: PepNodeConfig): void {
    const json = JSON.stringify(config);
    this.db.transaction(() => {
      if (this.stmts.insertPepNode.run(owner, node, json).changes === 0) {
        this.stmts.updatePepNode.run(json, owner, node);
        this.stmts.trimPepItems.run(owner, node, owner, node, config.maxItems);
      }
    })();
  }
  deletePepNode(owner: string, node: string): boolean {
    return this.db.transaction(() => {
      this.stmts.purgePepNode.run(owner, node);
      this.stmts.deleteNodeSubscriptions.run(owner, node);
      return this.stmts.deletePepNode.run(owner, node).changes === 1;
    })();
  }
  putPepItem(owner: string, node: string, item: PepItem, maxItems: number): void {
    this.db.transaction(() => {
      if (this.stmts.getPepNode.get(owner, node) === undefined) return;
      this.stmts.putPepItem.run(owner, node, item.id, item.xml, item.stamp);
      this.stmts.trimPepItems.run(owner, node, owner, node, maxItems);
    })();
  }
  getPepItems(owner: string, node: string, select: { ids?: string[]; max?: number } = {}): PepItem[] {
    if (select.ids !== undefined) {
      const found = select.ids
        .map((id) => this.stmts.getPepItem.get(owner, node, id))
        .filter((r): r is PepItem & { seq: number } => r !== undefined);
      return found.sort((a, b) => a.seq - b.seq).map(({ id, xml, stamp }) => ({ id, xml, stamp }));
    }
    if (select.max !== undefined) return this.stmts.newestPepItems.all(owner, node, select.max).reverse();
    return this.stmts.allPepItems.all(owner, node);
  }
  deletePepItem(owner: string, node: string, id: string): boolean {
    return this.stmts.deletePepItem.run(owner, node, id).changes === 1;
  }
  purgePepNode(owner: string, node: string): void {
    this.stmts.purgePepNode.run(owner, node);
  }
  listPepSubscriptions(owner: string, node?: string): PepSubscription[] {
    return node === undefined
      ? this.stmts.allPepSubscriptions.all(owner)
      : this.stmts.nodePepSubscriptions.all(owner, node);
  }
  putPepSubscription(owner: string, subscription: PepSubscription): void {
    this.db.transaction(() => {
      if (this.stmts.getPepNode.get(owner, subscription.node) === undefined) return;
      this.stmts.putPepSubscription.run(owner, subscription.node, subscription.jid, subscription.subid);
    })();
  }
  deletePepSubscription(owner: string, node: string, jid: string): boolean {
    return this.stmts.deletePepSubscription.run(owner, node, jid).changes === 1;
  }
  close(): void {
    if (this.db.open) this.db.close();
  }
}
