import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  deriveScramCredentials,
  parsePlain,
  ScramClient,
  type ScramCredentials,
  ScramServer,
  verifyPassword,
} from '../../src/xmpp/sasl.ts';
import { SaslprepError, saslprep } from '../../src/xmpp/saslprep.ts';

const b = (s: string) => Buffer.from(s, 'utf8');

test('SCRAM-SHA-1 server against the RFC 5802 §5 test vector', () => {
  const creds = deriveScramCredentials('SHA-1', 'pencil', Buffer.from('QSXCR+Q6sek8bf92', 'base64'), 4096);
  const server = new ScramServer('SHA-1', (u) => (u === 'user' ? creds : undefined), '3rfcNHYJY1ZVvWVs7j');
  const first = server.step(b('n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL'));
  assert.equal(first.kind, 'challenge');
  assert.equal(
    first.kind === 'challenge' && first.data.toString(),
    'r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096',
  );
  const final = server.step(
    b('c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts='),
  );
  assert.equal(final.kind, 'success');
  assert.equal(final.kind === 'success' && final.data?.toString(), 'v=rmF9pqV8S7suAoZWja4dJRkFsKQ=');
  assert.equal(final.kind === 'success' && final.username, 'user');
});

test('SCRAM-SHA-256 server against the RFC 7677 §3 test vector', () => {
  const creds = deriveScramCredentials(
    'SHA-256',
    'pencil',
    Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'),
    4096,
  );
  const server = new ScramServer(
    'SHA-256',
    (u) => (u === 'user' ? creds : undefined),
    '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  );
  const first = server.step(b('n,,n=user,r=rOprNGfwEbeRWgbNEkqO'));
  assert.equal(
    first.kind === 'challenge' && first.data.toString(),
    'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  );
  const final = server.step(
    b(
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
    ),
  );
  assert.equal(final.kind, 'success');
  assert.equal(
    final.kind === 'success' && final.data?.toString(),
    'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
  );
});

test('SCRAM client against the RFC 5802 vector', () => {
  const client = new ScramClient('SHA-1', 'user', 'pencil', 'fyko+d2lbbFgONRv9qkxdawL');
  assert.equal(client.first().toString(), 'n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL');
  const final = client.final(b('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096'));
  assert.equal(
    final.toString(),
    'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=',
  );
  assert.ok(client.verify(b('v=rmF9pqV8S7suAoZWja4dJRkFsKQ=')));
  assert.ok(!client.verify(b('v=AAAApqV8S7suAoZWja4dJRkFsKQ=')));
});

function exchange(
  creds: ScramCredentials,
  user: string,
  password: string,
  hash: 'SHA-1' | 'SHA-256' = 'SHA-256',
) {
  const server = new ScramServer(hash, (u) => (u === 'alice' ? creds : undefined));
  const client = new ScramClient(hash, user, password);
  const first = server.step(client.first());
  if (first.kind !== 'challenge') return first;
  return server.step(client.final(first.data));
}

test('wrong password and unknown user both fail only at the end with not-authorized', () => {
  const creds = deriveScramCredentials('SHA-256', 'secret');
  assert.equal(exchange(creds, 'alice', 'secret').kind, 'success');
  const wrong = exchange(creds, 'alice', 'nope');
  assert.deepEqual(wrong.kind === 'failure' && wrong.condition, 'not-authorized');
  const server = new ScramServer('SHA-256', () => undefined);
  const first = server.step(new ScramClient('SHA-256', 'ghost', 'x').first());
  assert.equal(first.kind, 'challenge', 'an unknown user still gets a challenge');
});

test('hostile SCRAM messages are refused without throwing', () => {
  const creds = deriveScramCredentials('SHA-1', 'pencil');
  const lookup = () => creds;
  const bad = [
    '',
    'n',
    'x,,n=user,r=abc',
    'p=tls-unique,,n=user,r=abc',
    'n,,m=ext,n=user,r=abc',
    'n,,n=us=er,r=abc',
    'n,,n=,r=abc',
    'n,,n=user',
    'n,,n=user,r=a,b',
    'n,,n=user,r=abc,r=def',
    'n,x,n=user,r=abc',
  ];
  for (const msg of bad) {
    const step = new ScramServer('SHA-1', lookup).step(b(msg));
    assert.equal(step.kind, 'failure', `accepted ${JSON.stringify(msg)}`);
  }
  const server = new ScramServer('SHA-1', lookup, 'SRV');
  server.step(b('n,,n=user,r=CLI'));
  const tampered = server.step(b('c=biws,r=CLIxxx,p=AAAA'));
  assert.equal(tampered.kind, 'failure');
  const s2 = new ScramServer('SHA-1', lookup, 'SRV');
  s2.step(b('n,,n=user,r=CLI'));
  assert.equal(s2.step(b('c=eSws,r=CLISRV,p=AAAA')).kind, 'failure', 'gs2 header mismatch');
  const s3 = new ScramServer('SHA-1', lookup, 'SRV');
  s3.step(b('n,,n=user,r=CLI'));
  assert.equal(s3.step(b('c=biws,r=CLISRV,p=!!!')).kind, 'failure', 'bad base64 proof');
  assert.equal(s3.step(b('anything')).kind, 'failure', 'no third step');
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }), (m1, m2) => {
      const s = new ScramServer('SHA-256', lookup);
      s.step(Buffer.from(m1));
      const r = s.step(Buffer.from(m2));
      assert.notEqual(r.kind, 'success');
    }),
    { numRuns: 300 },
  );
});

test('authzid is passed through from the GS2 header', () => {
  const creds = deriveScramCredentials('SHA-1', 'pw');
  const server = new ScramServer('SHA-1', () => creds, 'S');
  const first = server.step(b('n,a=alice@example.com,n=alice,r=C'));
  assert.equal(first.kind, 'challenge');
});

test('PLAIN parsing and verification against stored keys', async () => {
  assert.deepEqual(parsePlain(b('\0alice\0secret')), {
    authzid: undefined,
    username: 'alice',
    password: 'secret',
  });
  assert.equal(parsePlain(b('alice\0secret')), undefined);
  assert.equal(parsePlain(b('\0\0secret')), undefined);
  assert.equal(parsePlain(b('\0alice\0')), undefined);
  assert.equal(parsePlain(b('\0a\0b\0c')), undefined);
  const creds = deriveScramCredentials('SHA-256', 'secret');
  assert.equal(await verifyPassword('SHA-256', creds, 'secret'), true);
  assert.equal(await verifyPassword('SHA-256', creds, 'Secret'), false);
});

test('SASLprep (RFC 4013 §3 examples)', () => {
  assert.equal(saslprep('I\u00ADX'), 'IX');
  assert.equal(saslprep('user'), 'user');
  assert.equal(saslprep('USER'), 'USER');
  assert.equal(saslprep('\u00AA'), 'a');
  assert.equal(saslprep('\u2168'), 'IX');
  assert.throws(() => saslprep('\u0007'), SaslprepError);
  assert.throws(() => saslprep('\u0627\u0031'), SaslprepError, 'bidi: must end with RandALCat');
  assert.equal(saslprep('a\u00A0b'), 'a b');
  assert.throws(() => saslprep('a\u0627'), SaslprepError, 'mixed directions');
});
