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

export interface Store {
  getAccount(username: string): Account | undefined;
  hasAccount(username: string): boolean;
  listAccounts(): AccountInfo[];
  /** False when the account exists. */
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
  close(): void;
}

/** Both SCRAM key sets for a password (PBKDF2 runs off the event loop). */
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

  getAccount(username: string): Account | undefined {
    return this.accounts.get(username);
  }
  hasAccount(username: string): boolean {
    return this.accounts.has(username);
  }
  listAccounts(): AccountInfo[] {
    return [...this.accounts.values()]
      .map(({ username, extension, sipPassword }) => ({ username, extension, sipPassword }))
      .sort((a, b) => a.username.localeCompare(b.username));
  }
  createAccount(username: string, scram: Account['scram'], extras: Partial<AccountInfo> = {}): boolean {
    if (this.accounts.has(username)) return false;
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
`;

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
  close(): void {
    if (this.db.open) this.db.close();
  }
}
