import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import fc from 'fast-check';
import type { PhonePresence } from '../../src/gateway/device-state.ts';
import {
  isShareLevel,
  MAX_SETTINGS_PER_PHONE,
  parseShareArgument,
  SharingPolicy,
  sharedPresence,
} from '../../src/gateway/sharing.ts';

function recordingLog() {
  const warnings: string[] = [];
  return {
    warnings,
    log: { debug() {}, info() {}, warn: (_o: object, m?: string) => warnings.push(m ?? '') },
  };
}

function tempFile(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'sb-sharing-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'phone-sharing.json');
}

const TALKING: PhonePresence = {
  available: true,
  show: 'dnd',
  status: 'On the phone',
  detailedStatus: 'On the phone (with 1002)',
};
const UNREGISTERED: PhonePresence = {
  available: false,
  show: undefined,
  status: 'Not registered',
  detailedStatus: 'Not registered',
};

describe('sharing levels', () => {
  it('cut presence down: none shows nothing, state no number, numbers the owner’s text', () => {
    assert.deepEqual(sharedPresence(TALKING, 'none'), {
      available: false,
      show: undefined,
      status: undefined,
    });
    assert.deepEqual(sharedPresence(TALKING, 'state'), {
      available: true,
      show: 'dnd',
      status: 'On the phone',
    });
    assert.deepEqual(sharedPresence(TALKING, 'numbers'), {
      available: true,
      show: 'dnd',
      status: 'On the phone (with 1002)',
    });
    assert.deepEqual(sharedPresence(UNREGISTERED, 'state'), {
      available: false,
      show: undefined,
      status: 'Not registered',
    });
  });

  it('the owner’s setting for a subscriber wins over the device’s, which wins over the default', () => {
    const { log } = recordingLog();
    const p = new SharingPolicy({
      default: 'state',
      devices: { 'tel:1001': 'numbers', '1003': 'none' },
      log,
    });
    assert.equal(p.deviceLevel('1001'), 'numbers', 'device keys are normalized like events');
    assert.equal(p.deviceLevel('1002'), 'state');
    assert.equal(p.level('1002', 'bob@localhost'), 'state');
    assert.equal(p.level('1001', 'bob@localhost'), 'numbers');
    p.set('1001', 'bob@localhost', 'none');
    assert.equal(p.level('1001', 'bob@localhost'), 'none');
    assert.equal(p.level('1001', 'carol@localhost'), 'numbers');
    p.set('1001', 'bob@localhost', undefined);
    assert.equal(p.level('1001', 'bob@localhost'), 'numbers', 'default: back to the device’s level');
    assert.deepEqual(p.settingsFor('1001'), []);
    assert.equal(new SharingPolicy({ log }).level('1', 'x@y'), 'state', 'numbers only to owners by default');
  });

  it('refuses subscriptions only where the administrator shares nothing and the owner has not said otherwise', () => {
    const { log } = recordingLog();
    const p = new SharingPolicy({ default: 'none', devices: { '1002': 'state' }, log });
    assert.equal(p.refuses('1001', 'bob@localhost'), true);
    assert.equal(p.refuses('1002', 'bob@localhost'), false);
    p.set('1001', 'bob@localhost', 'state');
    assert.equal(p.refuses('1001', 'bob@localhost'), false);
    p.set('1001', 'bob@localhost', 'none');
    assert.equal(p.refuses('1001', 'bob@localhost'), false, 'the owner’s none keeps the subscription');
    assert.equal(p.level('1001', 'bob@localhost'), 'none');
  });

  it('keeps owners’ settings in a private file across restarts', (t) => {
    const file = tempFile(t);
    const { log } = recordingLog();
    const first = new SharingPolicy({ file, log });
    first.set('1001', 'bob@localhost', 'numbers');
    first.set('1001', 'carol@localhost', 'none');
    first.set('1002', 'alice@localhost', 'state');
    first.set('1002', 'alice@localhost', undefined);
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), {
      '1001': { 'bob@localhost': 'numbers', 'carol@localhost': 'none' },
    });
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const second = new SharingPolicy({ file, log });
    assert.equal(second.level('1001', 'bob@localhost'), 'numbers');
    assert.equal(second.level('1001', 'carol@localhost'), 'none');
    assert.deepEqual(second.settingsFor('1002'), []);
  });

  it('a damaged or hostile file is ignored, entry by entry, with a warning, never a crash', (t) => {
    const file = tempFile(t);
    for (const text of ['{', '[]', 'null', '"x"', '{"1001": [1,2]}', '{"1001": null}']) {
      writeFileSync(file, text);
      const { log, warnings } = recordingLog();
      const p = new SharingPolicy({ file, log });
      assert.deepEqual(p.settingsFor('1001'), [], text);
      assert.equal(warnings.length, 1, text);
    }
    writeFileSync(
      file,
      JSON.stringify({ '1001': { 'bob@localhost': 'numbers', 'eve@x': 'everything', 'mal@x': { a: 1 } } }),
    );
    const { log, warnings } = recordingLog();
    const p = new SharingPolicy({ file, log });
    assert.deepEqual(p.settingsFor('1001'), [['bob@localhost', 'numbers']]);
    assert.equal(p.level('1001', 'eve@x'), 'state');
    assert.deepEqual(warnings, ['ignoring bad entries in the sharing file']);
  });

  it('bounds the settings per phone', () => {
    const { log } = recordingLog();
    const p = new SharingPolicy({ log });
    for (let i = 0; i < MAX_SETTINGS_PER_PHONE; i++)
      assert.equal(p.set('1001', `u${i}@localhost`, 'none'), true);
    assert.equal(p.set('1001', 'one-more@localhost', 'none'), false);
    assert.equal(p.set('1001', 'u0@localhost', 'numbers'), true, 'changing an existing one still works');
    assert.equal(p.set('1002', 'one-more@localhost', 'none'), true, 'other phones are not affected');
  });
});

describe('the share command’s argument', () => {
  it('lists, sets, clears, or asks for the right words', () => {
    assert.deepEqual(parseShareArgument(''), { kind: 'list' });
    assert.deepEqual(parseShareArgument('  '), { kind: 'list' });
    assert.deepEqual(parseShareArgument('bob NUMBERS'), { kind: 'set', contact: 'bob', level: 'numbers' });
    assert.deepEqual(parseShareArgument('bob@localhost  none'), {
      kind: 'set',
      contact: 'bob@localhost',
      level: 'none',
    });
    assert.deepEqual(parseShareArgument('bob default'), { kind: 'set', contact: 'bob', level: undefined });
    assert.deepEqual(parseShareArgument('bob'), { kind: 'usage' });
    assert.deepEqual(parseShareArgument('bob everything'), { kind: 'usage' });
    assert.deepEqual(parseShareArgument('bob state please'), { kind: 'usage' });
  });

  it('never throws and only ever yields a known level (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        const r = parseShareArgument(s);
        if (r.kind === 'set') {
          assert.ok(r.level === undefined || isShareLevel(r.level));
          assert.ok(r.contact.length > 0 && !/\s/.test(r.contact));
        }
      }),
    );
  });
});
