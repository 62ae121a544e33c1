import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { verifyPassword } from '../../src/xmpp/sasl.ts';
import {
  credentialsFor,
  MemoryStore,
  type RosterItem,
  SqliteStore,
  type Store,
} from '../../src/xmpp-server/store.ts';

const item = (jid: string, extra: Partial<RosterItem> = {}): RosterItem => ({
  jid,
  name: undefined,
  subscription: 'none',
  ask: false,
  pendingIn: false,
  approved: false,
  listed: true,
  groups: [],
  ...extra,
});

async function exercise(store: Store) {
  const creds = await credentialsFor('pw1');
  assert.equal(store.createAccount('alice', creds, { extension: '1001', sipPassword: 'sip1' }), true);
  assert.equal(store.createAccount('alice', creds), false, 'duplicate');
  assert.equal(store.hasAccount('alice'), true);
  const account = store.getAccount('alice')!;
  assert.equal(account.extension, '1001');
  assert.equal(account.sipPassword, 'sip1');
  assert.equal(await verifyPassword('SHA-256', account.scram['SHA-256'], 'pw1'), true);
  assert.equal(await verifyPassword('SHA-1', account.scram['SHA-1'], 'pw1'), true);
  assert.ok(store.setCredentials('alice', await credentialsFor('pw2')));
  assert.equal(await verifyPassword('SHA-256', store.getAccount('alice')!.scram['SHA-256'], 'pw2'), true);
  assert.ok(store.setAccountExtras('alice', { extension: '2001', sipPassword: null }));
  assert.deepEqual(store.listAccounts(), [{ username: 'alice', extension: '2001', sipPassword: undefined }]);

  store.putRosterItem(
    'alice',
    item('bob@localhost', { name: 'Bob', groups: ['Friends'], subscription: 'both' }),
  );
  store.putRosterItem('alice', item('carol@localhost', { pendingIn: true, listed: false }));
  assert.equal(store.getRoster('alice').length, 2);
  assert.deepEqual(store.getRosterItem('alice', 'bob@localhost')?.groups, ['Friends']);
  assert.equal(store.getRosterItem('alice', 'carol@localhost')?.pendingIn, true);
  store.deleteRosterItem('alice', 'carol@localhost');
  assert.equal(store.getRosterItem('alice', 'carol@localhost'), undefined);

  assert.ok(store.pushOffline('alice', { xml: '<message/>', stamp: 's1' }, 2));
  assert.ok(store.pushOffline('alice', { xml: '<message>2</message>', stamp: 's2' }, 2));
  assert.equal(store.pushOffline('alice', { xml: '<message>3</message>', stamp: 's3' }, 2), false, 'bounded');
  assert.deepEqual(
    store.takeOffline('alice').map((m) => m.stamp),
    ['s1', 's2'],
  );
  assert.deepEqual(store.takeOffline('alice'), []);

  assert.equal(store.deleteAccount('alice'), true);
  assert.equal(store.getRoster('alice').length, 0);
  assert.equal(store.deleteAccount('alice'), false);
}

test('memory store', async () => {
  await exercise(new MemoryStore());
});

test('SQLite store, persisted across reopen, keeps no plaintext XMPP password', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'accounts.sqlite');
  const store = new SqliteStore(path);
  await exercise(store);
  store.createAccount('bob', await credentialsFor('hunter2-unique'), { extension: '1002' });
  store.close();
  const reopened = new SqliteStore(path);
  t.after(() => reopened.close());
  assert.equal(reopened.getAccount('bob')?.extension, '1002');
  reopened.close();
  const { readFileSync, readdirSync } = await import('node:fs');
  for (const file of readdirSync(dir)) {
    assert.ok(!readFileSync(join(dir, file)).includes('hunter2-unique'), `plaintext password in ${file}`);
  }
});
