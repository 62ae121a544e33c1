/**
 * Registrar (RFC 3261 §10.3) through the voice server over UDP: digest challenge (MD5 and SHA-256),
 * several contacts, refresh, un-register, Contact: *, 423, expiry with device events, wrong password,
 * unknown user and foreign domain, own address accepted as domain, nonce stale.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VoiceServer } from '../../src/pbx/server.ts';
import { InMemoryUserDirectory } from '../../src/pbx/users.ts';
import { authorize, parseAuthHeader } from '../../src/sip/digest.ts';
import { SipRequest } from '../../src/sip/message.ts';
import { parseUri } from '../../src/sip/uri.ts';
import { waitEvent } from '../helpers/net.ts';
import { TestPhone } from '../helpers/sip-phone.ts';

const users = new InMemoryUserDirectory([
  { name: 'alice', extension: '1001', sipPassword: 'alice-secret' },
  { name: 'bob', extension: '1002', sipPassword: 'bob-secret' },
]);

let server: VoiceServer;
const phones: TestPhone[] = [];

async function phone(ext = '1001', password = 'alice-secret', domain = 'localhost'): Promise<TestPhone> {
  const p = new TestPhone(ext, password, { host: '127.0.0.1', port: server.sipPort, domain });
  await p.start();
  phones.push(p);
  return p;
}

before(async () => {
  server = new VoiceServer({
    users,
    host: '127.0.0.1',
    sipPort: 0,
    registrar: { minExpires: 60, maxExpires: 3600 },
    authAlgorithms: ['MD5', 'SHA-256'],
  });
  await server.start();
});

after(async () => {
  for (const p of phones) await p.stop();
  await server.stop();
});

describe('registrar', () => {
  it('challenges REGISTER with 401 offering MD5 and SHA-256, accepts the answer', async () => {
    const p = await phone();
    const first = await new Promise<import('../../src/sip/message.ts').SipResponse>((resolve, reject) => {
      const r = new SipRequest('REGISTER', parseUri('sip:localhost'));
      r.append('From', `<${p.aor}>;tag=x`);
      r.append('To', `<${p.aor}>`);
      r.append('Call-ID', 'challenge@test');
      r.append('CSeq', '1 REGISTER');
      r.append('Contact', p.contact);
      p.stack.sendRequest(
        r,
        { onResponse: resolve, onTimeout: reject, onTransportError: reject },
        { protocol: 'UDP', address: '127.0.0.1', port: server.sipPort },
      );
    });
    assert.equal(first.status, 401);
    const algorithms = first
      .getAll('WWW-Authenticate')
      .map((h) => parseAuthHeader(h)?.params.get('algorithm'));
    assert.deepEqual(algorithms, ['MD5', 'SHA-256']);
    assert.equal(parseAuthHeader(first.getAll('WWW-Authenticate')[0]!)?.params.get('realm'), 'localhost');

    const inService = waitEvent(server, 'device-in-service', 3000);
    const ok = await p.register(3600);
    assert.equal(ok.status, 200);
    assert.deepEqual(await inService, ['1001']);
    assert.match(ok.get('Contact') ?? '', /expires=3600/);
    assert.equal(server.registrar.lookup('1001').length, 1);
  });

  it('works with a directory that returns a fresh user object on every lookup (as a database would)', async () => {
    const fresh = {
      findUser: (u: string) => {
        const x = users.findUser(u);
        return x === undefined ? undefined : { ...x };
      },
    };
    const s = new VoiceServer({ users: fresh, host: '127.0.0.1', sipPort: 0 });
    await s.start();
    try {
      const p = new TestPhone('1001', 'alice-secret', {
        host: '127.0.0.1',
        port: s.sipPort,
        domain: 'localhost',
      });
      await p.start();
      phones.push(p);
      assert.equal((await p.register(120)).status, 200);
      const q = new TestPhone('1002', 'bob-secret', {
        host: '127.0.0.1',
        port: s.sipPort,
        domain: 'localhost',
      });
      await q.start();
      phones.push(q);
      assert.equal((await q.register(120)).status, 200);
      assert.equal((await p.call('1002').done).status, 200);
      await p.hangup();
    } finally {
      await s.stop();
    }
  });

  it('SHA-256 credentials work too', async () => {
    const p = await phone('1002', 'bob-secret');
    const build = () => {
      const r = new SipRequest('REGISTER', parseUri('sip:localhost'));
      r.append('From', `<${p.aor}>;tag=y`);
      r.append('To', `<${p.aor}>`);
      r.append('Call-ID', 'sha@test');
      r.append('CSeq', '1 REGISTER');
      r.append('Contact', p.contact);
      r.append('Expires', '120');
      return r;
    };
    const send = (r: SipRequest) =>
      new Promise<import('../../src/sip/message.ts').SipResponse>((resolve, reject) =>
        p.stack.sendRequest(
          r,
          { onResponse: (x) => x.status >= 200 && resolve(x), onTimeout: reject, onTransportError: reject },
          { protocol: 'UDP', address: '127.0.0.1', port: server.sipPort },
        ),
      );
    const challenge = await send(build());
    const sha = challenge
      .getAll('WWW-Authenticate')
      .map((h) => parseAuthHeader(h)!)
      .find((h) => h.params.get('algorithm') === 'SHA-256')!;
    const second = build();
    second.set('CSeq', '2 REGISTER');
    second.append(
      'Authorization',
      authorize(sha, { username: '1002', password: 'bob-secret' }, 'REGISTER', 'sip:localhost'),
    );
    assert.equal((await send(second)).status, 200);
    await p.register(0);
  });

  it('keeps several contacts per extension and removes one with expires=0', async () => {
    const a = await phone();
    const b = await phone();
    assert.equal((await a.register(600)).status, 200);
    const r = await b.register(600);
    assert.equal(r.status, 200);
    assert.ok(server.registrar.lookup('1001').length >= 2);
    assert.ok(r.getAll('Contact').length >= 2, 'the 200 lists all bindings');
    const before = server.registrar.lookup('1001').length;
    assert.equal((await b.register(0)).status, 200);
    assert.equal(server.registrar.lookup('1001').length, before - 1);
  });

  it('an out-of-order REGISTER (same Call-ID, lower CSeq) gets 500; more than 10 contacts get 403', async () => {
    const p = await phone('1002', 'bob-secret');
    assert.equal((await p.register(600, { callId: 'order@test' })).status, 200);
    // TestPhone numbers CSeq upwards; a fresh phone with the same Call-ID starts lower again
    const q = await phone('1002', 'bob-secret');
    const r = await q.register(600, { callId: 'order@test', contact: p.contact });
    assert.equal(r.status, 500);
    const extra: TestPhone[] = [];
    for (let i = 0; i < 10; i++) extra.push(await phone('1002', 'bob-secret'));
    const statuses: number[] = [];
    for (const e of extra) statuses.push((await e.register(600)).status);
    assert.ok(statuses.includes(403), `statuses: ${statuses}`);
    assert.ok(server.registrar.lookup('1002').length <= 10);
    for (const e of [p, ...extra]) await e.register(0);
  });

  it('423 with Min-Expires below the minimum; huge values are clamped', async () => {
    const p = await phone();
    const r = await p.register(10);
    assert.equal(r.status, 423);
    assert.equal(r.get('Min-Expires'), '60');
    const big = await p.register(99999999);
    assert.equal(big.status, 200);
    assert.match(big.getAll('Contact').find((c) => c.includes(`:${p.port}`)) ?? '', /expires=3600/);
  });

  it('Contact: * with Expires: 0 removes everything and raises out-of-service; * without it is 400', async () => {
    const p = await phone();
    assert.equal((await p.register(300, { contact: '*' })).status, 400);
    const out = waitEvent(server, 'device-out-of-service', 3000);
    const r = await p.register(0, { contact: '*' });
    assert.equal(r.status, 200);
    assert.deepEqual(await out, ['1001', 'removed']);
    assert.equal(server.registrar.lookup('1001').length, 0);
  });

  it('wrong password -> 403, unknown user -> 403 after challenge, foreign domain -> 404', async () => {
    const p = await phone();
    assert.equal((await p.register(600, { password: 'wrong' })).status, 403);
    const ghost = await phone('9999', 'x');
    assert.equal((await ghost.register(600)).status, 403);
    const foreign = await phone('1001', 'alice-secret', 'example.org');
    assert.equal((await foreign.register(600)).status, 404);
  });

  it('refuses an address outright after 10 wrong answers (brute force)', async () => {
    const s = new VoiceServer({ users, host: '127.0.0.1', sipPort: 0 });
    await s.start();
    try {
      const p = new TestPhone('1002', 'bob-secret', {
        host: '127.0.0.1',
        port: s.sipPort,
        domain: 'localhost',
      });
      await p.start();
      phones.push(p);
      for (let i = 0; i < 10; i++)
        assert.equal((await p.register(120, { password: `guess${i}` })).status, 403);
      const blocked = await p.register(120);
      assert.equal(blocked.status, 403, 'even the right password is refused while blocked');
      assert.match(blocked.reason, /too many failed attempts/);
    } finally {
      await s.stop();
    }
  });

  it('accepts its own listening address as the domain', async () => {
    const p = await phone('1002', 'bob-secret', `127.0.0.1:${server.sipPort}`);
    // realm stays the SIP domain even when the URI names the address
    assert.equal((await p.register(600)).status, 200);
    await p.register(0);
  });

  it('offers only MD5 unless configured otherwise (baresip 1.0 fails on any unknown algorithm)', async () => {
    const s = new VoiceServer({ users, host: '127.0.0.1', sipPort: 0 });
    await s.start();
    try {
      const p = new TestPhone('1001', 'alice-secret', {
        host: '127.0.0.1',
        port: s.sipPort,
        domain: 'localhost',
      });
      await p.start();
      phones.push(p);
      const challenge = await new Promise<import('../../src/sip/message.ts').SipResponse>(
        (resolve, reject) => {
          const r = new SipRequest('REGISTER', parseUri('sip:localhost'));
          r.append('From', `<${p.aor}>;tag=x`);
          r.append('To', `<${p.aor}>`);
          r.append('Call-ID', 'md5only@test');
          r.append('CSeq', '1 REGISTER');
          r.append('Contact', p.contact);
          p.stack.sendRequest(
            r,
            { onResponse: resolve, onTimeout: reject, onTransportError: reject },
            { protocol: 'UDP', address: '127.0.0.1', port: s.sipPort },
          );
        },
      );
      assert.deepEqual(
        challenge.getAll('WWW-Authenticate').map((h) => parseAuthHeader(h)?.params.get('algorithm')),
        ['MD5'],
      );
      assert.equal((await p.register(120)).status, 200);
    } finally {
      await s.stop();
    }
  });

  it('a binding expires and raises unregistered and out-of-service', async () => {
    const short = new VoiceServer({ users, host: '127.0.0.1', sipPort: 0, registrar: { minExpires: 1 } });
    await short.start();
    try {
      const p = new TestPhone('1002', 'bob-secret', {
        host: '127.0.0.1',
        port: short.sipPort,
        domain: 'localhost',
      });
      await p.start();
      phones.push(p);
      assert.equal((await p.register(1)).status, 200);
      const [binding, reason] = await waitEvent(short.registrar, 'unregistered', 5000);
      assert.equal(reason, 'expired');
      assert.equal((binding as { extension: string }).extension, '1002');
      assert.equal(short.registrar.lookup('1002').length, 0);
    } finally {
      await short.stop();
    }
  });

  it('a stale nonce gets a new challenge with stale=true', async () => {
    let now = Date.now();
    const s = new VoiceServer({
      users,
      host: '127.0.0.1',
      sipPort: 0,
      nonceLifetimeMs: 1000,
      clock: () => now,
    });
    await s.start();
    try {
      const p = new TestPhone('1001', 'alice-secret', {
        host: '127.0.0.1',
        port: s.sipPort,
        domain: 'localhost',
      });
      await p.start();
      phones.push(p);
      const send = (r: SipRequest) =>
        new Promise<import('../../src/sip/message.ts').SipResponse>((resolve, reject) =>
          p.stack.sendRequest(
            r,
            { onResponse: (x) => x.status >= 200 && resolve(x), onTimeout: reject, onTransportError: reject },
            { protocol: 'UDP', address: '127.0.0.1', port: s.sipPort },
          ),
        );
      const build = (seq: number) => {
        const r = new SipRequest('REGISTER', parseUri('sip:localhost'));
        r.append('From', `<${p.aor}>;tag=z`);
        r.append('To', `<${p.aor}>`);
        r.append('Call-ID', 'stale@test');
        r.append('CSeq', `${seq} REGISTER`);
        r.append('Contact', p.contact);
        return r;
      };
      const challenge = parseAuthHeader((await send(build(1))).getAll('WWW-Authenticate')[0]!)!;
      // the nonce is now older than its lifetime (1 s); answer it correctly
      now += 1001;
      const late = build(2);
      late.append(
        'Authorization',
        authorize(challenge, { username: '1001', password: 'alice-secret' }, 'REGISTER', 'sip:localhost'),
      );
      const r = await send(late);
      assert.equal(r.status, 401);
      assert.match(r.get('WWW-Authenticate') ?? '', /stale=true/);
    } finally {
      await s.stop();
    }
  });
});
