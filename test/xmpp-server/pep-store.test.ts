/** PEP nodes and items in both stores: order, replacement by id, trimming, deletion, persistence. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  credentialsFor,
  DEFAULT_PEP_NODE_CONFIG,
  MemoryStore,
  SqliteStore,
  type Store,
} from '../../src/xmpp-server/store.ts';

const item = (id: string, n = 0) => ({
  id,
  xml: `<x xmlns='urn:t'>${id}${n}</x>`,
  stamp: `2026-01-01T00:00:0${n}Z`,
});

async function exercise(store: Store): Promise<void> {
  await store.createAccount('alice', await credentialsFor('pw'));
  assert.deepEqual(store.listPepNodes('alice'), []);
  store.putPepItem('alice', 'missing', item('a'), 5);
  assert.deepEqual(store.getPepItems('alice', 'missing'), [], 'no item without a node');
  store.putPepNode('alice', 'n1', { ...DEFAULT_PEP_NODE_CONFIG, maxItems: 3 });
  store.putPepNode('alice', 'n2', { ...DEFAULT_PEP_NODE_CONFIG, accessModel: 'open', title: 'Two' });
  assert.deepEqual(
    store.listPepNodes('alice').map((n) => n.node),
    ['n1', 'n2'],
  );
  assert.equal(store.getPepNode('alice', 'n2')?.title, 'Two');
  assert.equal(store.getPepNode('alice', 'n2')?.accessModel, 'open');
  for (const [i, id] of ['a', 'b', 'c', 'd'].entries()) store.putPepItem('alice', 'n1', item(id, i), 3);
  assert.deepEqual(
    store.getPepItems('alice', 'n1').map((i) => i.id),
    ['b', 'c', 'd'],
    'trimmed to maxItems, oldest first',
  );
  store.putPepItem('alice', 'n1', item('b', 9), 3);
  assert.deepEqual(
    store.getPepItems('alice', 'n1').map((i) => i.id),
    ['c', 'd', 'b'],
    'a republished id becomes the newest',
  );
  assert.equal(store.getPepItems('alice', 'n1', { max: 1 })[0]?.xml, `<x xmlns='urn:t'>b9</x>`);
  assert.deepEqual(
    store.getPepItems('alice', 'n1', { ids: ['b', 'zz', 'c'] }).map((i) => i.id),
    ['c', 'b'],
  );
  store.putPepNode('alice', 'n1', { ...DEFAULT_PEP_NODE_CONFIG, maxItems: 1 });
  assert.deepEqual(
    store.getPepItems('alice', 'n1').map((i) => i.id),
    ['b'],
    'a lower maxItems trims',
  );
  assert.equal(store.deletePepItem('alice', 'n1', 'b'), true);
  assert.equal(store.deletePepItem('alice', 'n1', 'b'), false);
  store.putPepItem('alice', 'n2', item('x'), 1);
  store.purgePepNode('alice', 'n2');
  assert.deepEqual(store.getPepItems('alice', 'n2'), []);
  store.putPepItem('alice', 'n2', item('y'), 1);
  assert.equal(store.deletePepNode('alice', 'n2'), true);
  assert.equal(store.deletePepNode('alice', 'n2'), false);
  assert.equal(store.getPepNode('alice', 'n2'), undefined);
  store.putPepNode('alice', 'n2', DEFAULT_PEP_NODE_CONFIG);
  assert.deepEqual(store.getPepItems('alice', 'n2'), [], 'a re-created node starts empty');
  store.putPepItem('alice', 'n1', item('keep'), 1);
  store.putPepSubscription('alice', { node: 'nowhere', jid: 'x@y', subid: '0' });
  assert.deepEqual(store.listPepSubscriptions('alice'), [], 'no subscription without a node');
  store.putPepSubscription('alice', { node: 'n2', jid: 'carol@localhost/web', subid: '1' });
  store.putPepSubscription('alice', { node: 'n1', jid: 'carol@localhost/web', subid: '2' });
  store.putPepSubscription('alice', { node: 'n2', jid: 'carol@localhost/web', subid: '3' });
  assert.deepEqual(
    store.listPepSubscriptions('alice').map((s) => `${s.node} ${s.subid}`),
    ['n1 2', 'n2 3'],
    'one per JID and node, replaced',
  );
  assert.deepEqual(
    store.listPepSubscriptions('alice', 'n1').map((s) => s.jid),
    ['carol@localhost/web'],
  );
  assert.equal(store.deletePepSubscription('alice', 'n1', 'carol@localhost/web'), true);
  assert.equal(store.deletePepSubscription('alice', 'n1', 'carol@localhost/web'), false);
  store.deletePepNode('alice', 'n2');
  assert.deepEqual(store.listPepSubscriptions('alice'), [], 'deleting the node ends its subscriptions');
  store.putPepNode('alice', 'n2', DEFAULT_PEP_NODE_CONFIG);
  store.putPepSubscription('alice', { node: 'n1', jid: 'dave@localhost', subid: '4' });
  // Other accounts are separate; deleting an account removes its PEP data.
  await store.createAccount('bob', await credentialsFor('pw'));
  assert.deepEqual(store.listPepNodes('bob'), []);
  store.putPepNode('bob', 'n1', DEFAULT_PEP_NODE_CONFIG);
  store.putPepItem('bob', 'n1', item('bobs'), 1);
  store.putPepSubscription('bob', { node: 'n1', jid: 'alice@localhost', subid: '5' });
  store.deleteAccount('bob');
  assert.deepEqual(store.listPepNodes('bob'), []);
  assert.deepEqual(store.listPepSubscriptions('bob'), []);
  assert.deepEqual(store.getPepItems('bob', 'n1'), []);
}

test('memory store: PEP nodes and items', async () => {
  await exercise(new MemoryStore());
});

test('SQLite store: PEP nodes and items, kept across reopen; an unreadable configuration falls back to defaults', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-pepstore-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'accounts.sqlite');
  const store = new SqliteStore(path);
  await exercise(store);
  store.close();
  const again = new SqliteStore(path);
  t.after(() => again.close());
  assert.deepEqual(
    again.getPepItems('alice', 'n1').map((i) => i.id),
    ['keep'],
  );
  assert.equal(again.getPepNode('alice', 'n1')?.maxItems, 1);
  assert.deepEqual(
    again.listPepSubscriptions('alice').map((s) => s.jid),
    ['dave@localhost'],
  );
  // A configuration written by something else (or damaged): defaults field by field.
  const raw = (again as unknown as { db: import('better-sqlite3').Database }).db;
  raw
    .prepare("UPDATE pep_nodes SET config = ? WHERE owner = 'alice' AND node = 'n1'")
    .run('{"maxItems": -4, "accessModel": "open"');
  assert.deepEqual(again.getPepNode('alice', 'n1'), DEFAULT_PEP_NODE_CONFIG);
  raw
    .prepare("UPDATE pep_nodes SET config = ? WHERE owner = 'alice' AND node = 'n1'")
    .run('{"maxItems": -4, "accessModel": "open"}');
  assert.deepEqual(again.getPepNode('alice', 'n1'), { ...DEFAULT_PEP_NODE_CONFIG, accessModel: 'open' });
});
