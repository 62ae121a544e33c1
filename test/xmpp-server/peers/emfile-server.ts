/**
 * A text server in its own process, for the file-descriptor exhaustion test (run under
 * `prlimit --nofile=N`) and the many-connections test: prints its ports, then runs until SIGTERM.
 * Accounts: alice, bob (password NAMEpw). NEGOTIATION_TIMEOUT_S sets the login timeout.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { XmppServer } from '../../../src/xmpp-server/server.ts';
import { credentialsFor, MemoryStore } from '../../../src/xmpp-server/store.ts';

const dir = mkdtempSync(join(tmpdir(), 'sb-emfile-'));
const store = new MemoryStore();
for (const name of ['alice', 'bob']) store.createAccount(name, await credentialsFor(`${name}pw`));
const server = new XmppServer(
  {
    domain: 'localhost',
    host: '127.0.0.1',
    c2sPort: 0,
    componentPort: 0,
    components: new Map([['cti.localhost', 'gwsecret']]),
    allowPlainLoopback: true,
    dataDir: dir,
    negotiationTimeoutS: Number(process.env.NEGOTIATION_TIMEOUT_S ?? 30),
  },
  { store, log: pino({ level: 'warn' }, pino.destination(2)) },
);
await server.start();
console.log(`PORTS ${server.c2sPort} ${server.componentPort}`);
process.once('SIGTERM', () => {
  void server.stop().then(() => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
});
