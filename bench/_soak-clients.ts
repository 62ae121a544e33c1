/**
 * Churn for `npm run bench -- xmpp-soak`: at a steady rate, clients connect, log in, chat, and then
 * either close cleanly or vanish (socket destroyed). Runs in its own process so the server's memory is
 * measured alone. Arguments: PORT USERS RATE_PER_S SECONDS. Prints one JSON line of counts at the end.
 */

import { Element } from '../src/xml/index.ts';
import { XmppClient } from '../src/xmpp/client.ts';

const [port, users, rate, seconds] = process.argv.slice(2).map(Number) as [number, number, number, number];
const counts = { logins: 0, messages: 0, clean: 0, killed: 0, errors: 0 };
const errors = new Map<string, number>();
const inFlight = new Set<Promise<void>>();
const end = Date.now() + seconds * 1000;
let n = 0;

async function churn(i: number): Promise<void> {
  const user = `u${i % users}`;
  try {
    const c = await XmppClient.connect({
      host: '127.0.0.1',
      port,
      domain: 'localhost',
      username: user,
      password: `pw-${user}`,
      tls: 'none',
      resource: `r${i}`,
    });
    counts.logins++;
    c.send(new Element('presence', 'jabber:client'));
    const m = new Element('message', 'jabber:client', { to: `u${(i + 1) % users}@localhost`, type: 'chat' });
    m.c('body').append(`hello ${i}`);
    c.send(m);
    counts.messages++;
    if (i % 3 === 0) {
      c.kill();
      counts.killed++;
    } else {
      await c.close();
      counts.clean++;
    }
  } catch (e) {
    counts.errors++;
    const key = (e as Error).message.slice(0, 60);
    errors.set(key, (errors.get(key) ?? 0) + 1);
  }
}

while (Date.now() < end) {
  const due = Math.floor(((seconds * 1000 - (end - Date.now())) / 1000) * rate);
  while (n < due && inFlight.size < 200) {
    const p = churn(n++).finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  await new Promise((r) => setTimeout(r, 10));
}
await Promise.allSettled([...inFlight]);
console.log(JSON.stringify({ ...counts, errorKinds: Object.fromEntries(errors) }));
process.exit(0);
