// The Switchboard web client: login, roster with presence (phone contacts too), one-to-one chat, and a
// phone panel driven by the gateway's chat commands (docs/phone-features.md). See docs/web-client.md.
import { bare, child, esc, XmppClient, xml } from './xmpp.js';

const ROSTER_NS = 'jabber:iq:roster';
const $ = (id) => document.getElementById(id);

const params = new URLSearchParams(location.search);
const WS_URL =
  params.get('ws') ?? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/xmpp-websocket`;

/** Everything the page knows about the session. */
const state = {
  client: undefined,
  me: '',
  gateway: '',
  myExtension: undefined,
  /** bare JID → { jid, name, subscription, ask } */
  roster: new Map(),
  /** bare JID → Map(resource → { show, status }) */
  presence: new Map(),
  /** bare JID → [{ from, text, mine }] */
  chats: new Map(),
  unread: new Map(),
  selected: undefined,
  incoming: undefined,
  history: [],
};

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

const isPhone = (jid) => jid.endsWith(`@${state.gateway}`);

// ---------- login ----------

$('login').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('login-error').textContent = '';
  $('login-button').disabled = true;
  const jid = $('jid').value.trim();
  const client = new XmppClient();
  try {
    await client.connect(WS_URL, jid, $('password').value, `web-${Math.random().toString(36).slice(2, 8)}`);
  } catch (err) {
    $('login-error').textContent = err.message;
    $('login-button').disabled = false;
    client.onClose('login failed');
    return;
  }
  await start(client);
});

$('logout').addEventListener('click', () => {
  state.client?.presence({ type: 'unavailable' });
  state.client?.close();
});

async function start(client) {
  state.client = client;
  state.me = bare(client.jid);
  const domain = state.me.split('@')[1];
  state.gateway = params.get('gateway') ?? `cti.${domain}`;
  state.history = loadHistory();
  $('my-jid').textContent = client.jid;
  $('me').hidden = false;
  $('login-view').hidden = true;
  $('app-view').hidden = false;
  document.body.dataset.state = 'online';
  document.body.dataset.mechanism = client.mechanismUsed ?? '';
  client.addEventListener('stanza', (e) => onStanza(e.detail));
  client.addEventListener('iq', (e) => {
    if (onIq(e.detail)) e.preventDefault();
  });
  client.addEventListener('close', (e) => {
    document.body.dataset.state = 'offline';
    $('app-view').hidden = true;
    $('me').hidden = true;
    $('login-view').hidden = false;
    $('login-button').disabled = false;
    $('login-error').textContent = e.detail === 'logged out' ? '' : `Disconnected: ${e.detail}`;
    state.roster.clear();
    state.presence.clear();
  });
  try {
    const result = await client.iq('get', undefined, xml('query', { xmlns: ROSTER_NS }));
    for (const item of child(result, 'query', ROSTER_NS)?.children ?? []) rosterItem(item);
  } catch (err) {
    phoneLog(`Roster: ${err.message}`);
  }
  renderRoster();
  client.presence();
  // Directed presence tells the gateway we are here (it watches our phone and tells us about calls).
  client.presence({ to: state.gateway });
  renderHistory();
  // Ask the gateway which phone is ours; the answer ("Your phone 1001: Idle") sets up the phone panel.
  client.message(state.gateway, 'status');
}

// ---------- stanzas ----------

function onIq(iq) {
  const query = child(iq, 'query', ROSTER_NS);
  const from = iq.getAttribute('from');
  if (
    iq.getAttribute('type') === 'set' &&
    query !== undefined &&
    (from === null || bare(from) === state.me)
  ) {
    for (const item of query.children) rosterItem(item);
    renderRoster();
    state.client.send(xml('iq', { type: 'result', id: iq.getAttribute('id') ?? undefined }));
    return true;
  }
  return false;
}

function rosterItem(item) {
  const jid = item.getAttribute('jid');
  if (!jid) return;
  if (item.getAttribute('subscription') === 'remove') {
    state.roster.delete(jid);
    return;
  }
  state.roster.set(jid, {
    jid,
    name: item.getAttribute('name') ?? '',
    subscription: item.getAttribute('subscription') ?? 'none',
    ask: item.getAttribute('ask') ?? '',
  });
}

function onStanza(st) {
  if (st.localName === 'presence') onPresence(st);
  else if (st.localName === 'message') onMessage(st);
}

function onPresence(p) {
  const from = p.getAttribute('from') ?? '';
  const jid = bare(from);
  const type = p.getAttribute('type') ?? '';
  if (type === 'subscribe') {
    // Phone contacts ask for our presence back (as XEP-0100 gateways do): approve those at once.
    if (jid.endsWith(`@${state.gateway}`) || jid === state.gateway) {
      state.client.presence({ to: jid, type: 'subscribed' });
    } else showRequest(jid);
    return;
  }
  if (type !== '' && type !== 'unavailable') return;
  if (jid === state.me || jid === state.gateway) return;
  const resource = from.slice(jid.length + 1);
  const resources = state.presence.get(jid) ?? new Map();
  if (type === 'unavailable') {
    resources.delete(resource);
    if (isPhone(jid)) resources.set('', { show: 'offline', status: child(p, 'status')?.textContent ?? '' });
  } else {
    if (isPhone(jid)) resources.clear();
    resources.set(resource, {
      show: child(p, 'show')?.textContent || 'available',
      status: child(p, 'status')?.textContent ?? '',
    });
  }
  state.presence.set(jid, resources);
  if (state.myExtension !== undefined && jid === `${state.myExtension}@${state.gateway}`) onMyPhone();
  renderRoster();
}

function bestPresence(jid) {
  const resources = state.presence.get(jid);
  if (resources === undefined || resources.size === 0) return { show: 'offline', status: '' };
  const rank = { chat: 0, available: 1, away: 2, xa: 3, dnd: 4, offline: 5 };
  return [...resources.values()].sort((a, b) => (rank[a.show] ?? 9) - (rank[b.show] ?? 9))[0];
}

function onMessage(m) {
  const type = m.getAttribute('type') ?? 'normal';
  const body = child(m, 'body')?.textContent;
  if (body === undefined || type === 'error' || type === 'groupchat') return;
  const jid = bare(m.getAttribute('from') ?? '');
  if (jid === state.gateway) return gatewaySays(body);
  if (isPhone(jid) && /^(Incoming|Missed) call from /.test(body)) {
    // A notice kept for us while we were offline (XEP-0203 delay) is history, not a ringing phone.
    const delay = child(m, 'delay', 'urn:xmpp:delay');
    if (delay !== undefined)
      return addHistory(
        /^Missed/.test(body) ? 'missed' : 'incoming',
        callerOf(body),
        delay.getAttribute('stamp'),
      );
    return callNotice(jid, body);
  }
  addChat(jid, { text: body, mine: false });
}

// ---------- chat ----------

function addChat(jid, entry) {
  const list = state.chats.get(jid) ?? [];
  list.push(entry);
  state.chats.set(jid, list);
  if (state.selected !== jid && !entry.mine) state.unread.set(jid, (state.unread.get(jid) ?? 0) + 1);
  if (!state.roster.has(jid) && !entry.mine)
    state.roster.set(jid, { jid, name: '', subscription: 'none', ask: '' });
  renderRoster();
  if (state.selected === jid) renderChat();
}

function selectChat(jid) {
  state.selected = jid;
  state.unread.delete(jid);
  $('chat-with').textContent = `Chat with ${displayName(jid)}`;
  $('chat-input').disabled = false;
  $('chat-send').disabled = false;
  renderRoster();
  renderChat();
  $('chat-input').focus();
}

function renderChat() {
  const list = state.chats.get(state.selected) ?? [];
  $('messages').replaceChildren(...list.map((m) => el('li', { class: m.mine ? 'mine' : '' }, m.text)));
  $('messages').scrollTop = $('messages').scrollHeight;
}

$('chat-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('chat-input').value;
  if (state.selected === undefined || text.trim() === '') return;
  state.client.message(state.selected, text);
  $('chat-input').value = '';
  addChat(state.selected, { text, mine: true });
});

// ---------- roster ----------

function displayName(jid) {
  const item = state.roster.get(jid);
  if (item?.name) return item.name;
  if (isPhone(jid)) return `Phone ${jid.split('@')[0]}`;
  return jid;
}

function renderRoster() {
  const items = [...state.roster.values()].sort((a, b) =>
    displayName(a.jid).localeCompare(displayName(b.jid)),
  );
  $('roster').replaceChildren(
    ...items.map((item) => {
      const p = bestPresence(item.jid);
      const phone = isPhone(item.jid);
      const mine = phone && item.jid === `${state.myExtension}@${state.gateway}`;
      let status = p.status;
      if (p.show === 'offline' && status === '')
        status = item.ask === 'subscribe' ? 'waiting for approval' : 'offline';
      const unread = state.unread.get(item.jid);
      return el(
        'li',
        {
          class: `contact${state.selected === item.jid ? ' selected' : ''}`,
          dataset: { jid: item.jid, show: p.show },
        },
        el('span', { class: `dot ${p.show}`, title: p.show }),
        el(
          'span',
          { class: 'who', onclick: () => selectChat(item.jid), title: item.jid },
          el(
            'div',
            { class: 'name' },
            `${phone ? '☎ ' : ''}${displayName(item.jid)}${mine ? ' (my phone)' : ''}`,
          ),
          el('div', { class: 'status' }, status),
        ),
        unread ? el('span', { class: 'unread' }, String(unread)) : '',
        mine
          ? ''
          : el(
              'button',
              { type: 'button', class: 'call-button', onclick: () => callTarget(item.jid) },
              'Call',
            ),
      );
    }),
  );
}

function showRequest(jid) {
  const li = el(
    'li',
    { dataset: { jid } },
    `${jid} wants to see your presence `,
    el(
      'button',
      {
        type: 'button',
        onclick: () => {
          state.client.presence({ to: jid, type: 'subscribed' });
          if (!state.roster.has(jid)) void addContact(jid);
          li.remove();
        },
      },
      'Allow',
    ),
    el(
      'button',
      {
        type: 'button',
        onclick: () => {
          state.client.presence({ to: jid, type: 'unsubscribed' });
          li.remove();
        },
      },
      'Deny',
    ),
  );
  $('requests').append(li);
}

async function addContact(jid) {
  try {
    await state.client.iq('set', undefined, xml('query', { xmlns: ROSTER_NS }, xml('item', { jid })));
    state.client.presence({ to: jid, type: 'subscribe' });
  } catch (err) {
    phoneLog(`Could not add ${jid}: ${err.message}`);
  }
}

$('add-contact').addEventListener('submit', (e) => {
  e.preventDefault();
  const jid = bare($('add-jid').value.trim());
  if (!/^[^@\s]+@[^@\s]+$/.test(jid)) return;
  $('add-jid').value = '';
  void addContact(jid);
});

$('my-show').addEventListener('change', () => {
  const show = $('my-show').value;
  state.client.presence({}, show === '' ? '' : xml('show', {}, esc(show)));
});

// ---------- phone ----------

function command(text) {
  state.client.message(state.gateway, text);
  phoneLog(`→ ${text}`, true);
}

/** Calls a contact: a phone contact by its number, anyone else by JID (the gateway resolves both). */
function callTarget(jid) {
  command(`call ${isPhone(jid) ? jid.split('@')[0] : jid}`);
}

function phoneLog(text, mine = false) {
  const li = el('li', { class: mine ? 'mine' : '' }, text);
  $('phone-log').prepend(li);
  while ($('phone-log').children.length > 30) $('phone-log').lastElementChild.remove();
}

function gatewaySays(body) {
  phoneLog(body);
  const status = /^Your phone (\S+): (.*)/.exec(body);
  if (status !== null) return learnExtension(status[1]);
  const calling = /^Calling (.+) from your phone (\S+) …/.exec(body);
  if (calling !== null) {
    if (state.myExtension === undefined) learnExtension(calling[2]);
    addHistory('outgoing', calling[1]);
    setCall(`Calling ${calling[1]} …`, 'ringing');
  }
}

function learnExtension(extension) {
  if (state.myExtension === extension) return;
  state.myExtension = extension;
  $('my-phone').textContent = `(${extension})`;
  // Our own phone contact carries the phone's state ("Ringing", "On the phone", "On hold").
  const jid = `${extension}@${state.gateway}`;
  if (state.roster.get(jid)?.subscription !== 'both' && state.roster.get(jid)?.subscription !== 'to')
    void addContact(jid);
  else onMyPhone();
  renderRoster();
}

function onMyPhone() {
  const p = bestPresence(`${state.myExtension}@${state.gateway}`);
  const text = p.status || (p.show === 'offline' ? 'Not registered' : 'Idle');
  if (/^Ringing|^On the phone|^On hold|^Calling/.test(text))
    setCall(text, /^Ringing/.test(text) ? 'ringing' : 'active');
  else {
    setCall(text === 'Idle' ? 'No call' : text, 'idle');
    closeIncoming();
  }
}

function setCall(text, kind) {
  $('call-state').textContent = text;
  $('current-call').className = kind;
  // Without a call there is nothing to hang up, hold or transfer (unless we do not know our phone's state).
  const idle = kind === 'idle' && state.myExtension !== undefined;
  for (const id of ['hangup', 'hold', 'retrieve', 'transfer']) $(id).disabled = idle;
}

function callNotice(phoneJid, body) {
  const [first, callerJid] = body.split('\n');
  const missed = first.startsWith('Missed');
  const caller = callerOf(first);
  if (missed) {
    // The call that rang is the one missed: mark its entry rather than adding a second one.
    const rang = state.history.find((h) => h.kind === 'incoming' && h.party === caller);
    if (rang !== undefined && Date.now() - Date.parse(rang.at) < 10 * 60_000) {
      rang.kind = 'missed';
      saveHistory();
    } else addHistory('missed', caller);
    closeIncoming();
    return;
  }
  addHistory('incoming', caller);
  state.incoming = { phoneJid, caller, callerJid };
  $('incoming-caller').textContent = callerJid ? `${caller}\n${callerJid}` : caller;
  if (!$('incoming').open) $('incoming').show();
}

function callerOf(body) {
  return body.split('\n')[0].replace(/^(Incoming|Missed) call from /, '');
}

function closeIncoming() {
  state.incoming = undefined;
  if ($('incoming').open) $('incoming').close();
}

$('incoming-answer').addEventListener('click', () => {
  command('answer');
  closeIncoming();
});
$('incoming-decline').addEventListener('click', () => {
  command('hangup');
  closeIncoming();
});
$('incoming-dismiss').addEventListener('click', closeIncoming);
$('hangup').addEventListener('click', () => command('hangup'));
$('hold').addEventListener('click', () => command('hold'));
$('retrieve').addEventListener('click', () => command('retrieve'));
$('transfer-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const target = $('transfer-target').value.trim();
  command(target === '' ? 'transfer' : `transfer ${target}`);
  $('transfer-target').value = '';
});

for (const key of ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#']) {
  $('keys').append(
    el(
      'button',
      {
        type: 'button',
        onclick: () => {
          $('dial-number').value += key;
        },
      },
      key,
    ),
  );
}
$('dialpad').addEventListener('submit', (e) => {
  e.preventDefault();
  const target = $('dial-number').value.trim();
  if (target === '') return;
  command(`call ${target}`);
  $('dial-number').value = '';
});

// ---------- call history (kept in this browser, per account) ----------

function historyKey() {
  return `switchboard.history.${state.me}`;
}

function loadHistory() {
  try {
    const list = JSON.parse(localStorage.getItem(historyKey()) ?? '[]');
    return Array.isArray(list) ? list.slice(0, 50) : [];
  } catch {
    return [];
  }
}

function addHistory(kind, party, stamp) {
  const at = stamp && !Number.isNaN(Date.parse(stamp)) ? new Date(stamp) : new Date();
  state.history.unshift({ kind, party, at: at.toISOString() });
  state.history.length = Math.min(state.history.length, 50);
  saveHistory();
}

function saveHistory() {
  try {
    localStorage.setItem(historyKey(), JSON.stringify(state.history));
  } catch {
    // storage full or disabled: the history lives for this page only
  }
  renderHistory();
}

function renderHistory() {
  const arrow = { outgoing: '↗', incoming: '↙', missed: '✗' };
  $('history').replaceChildren(
    ...state.history.map((h) =>
      el(
        'li',
        { class: h.kind, dataset: { kind: h.kind } },
        `${arrow[h.kind] ?? ''} ${h.party} — ${new Date(h.at).toLocaleTimeString()}`,
      ),
    ),
  );
}
