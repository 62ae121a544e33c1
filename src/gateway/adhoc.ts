/**
 * The phone actions as XEP-0050 ad-hoc commands with XEP-0004 forms, so Gajim, Conversations and
 * other clients show them as menus. Each command runs the same code as its chat command.
 */
import { randomBytes } from 'node:crypto';
import { Element } from '../xml/index.ts';
import { stanza } from './component.ts';
import { STANZA_ERRORS_NS } from './errors.ts';
import type { XmppSide } from './gateway.ts';
import type { PhoneService } from './phone.ts';

export const COMMANDS_NS = 'http://jabber.org/protocol/commands';
const DATA_NS = 'jabber:x:data';
const DISCO_INFO_NS = 'http://jabber.org/protocol/disco#info';
const DISCO_ITEMS_NS = 'http://jabber.org/protocol/disco#items';

interface FieldSpec {
  var: string;
  label: string;
  type: 'text-single' | 'list-single';
  options?: [string, string][];
  required: boolean;
}

interface CommandSpec {
  node: string;
  name: string;
  /** The chat command it runs, and how the form becomes its argument. */
  command: string;
  fields: FieldSpec[];
  argument?: (values: Record<string, string>) => string;
  /** A chat command whose answer is shown above the form (XEP-0004 <instructions/>), e.g. current settings. */
  instructions?: string;
}

const TARGET: FieldSpec = {
  var: 'target',
  label: 'Number, name or JID',
  type: 'text-single',
  required: true,
};

export const COMMAND_SPECS: CommandSpec[] = [
  { node: 'call', name: 'Call', command: 'call', fields: [TARGET], argument: (v) => v.target ?? '' },
  { node: 'answer', name: 'Answer', command: 'answer', fields: [] },
  { node: 'hangup', name: 'Hang up', command: 'hangup', fields: [] },
  { node: 'hold', name: 'Hold', command: 'hold', fields: [] },
  { node: 'retrieve', name: 'Retrieve', command: 'retrieve', fields: [] },
  {
    node: 'transfer',
    name: 'Transfer',
    command: 'transfer',
    fields: [{ ...TARGET, required: false, label: 'Transfer to (empty: join your held and active calls)' }],
    argument: (v) => v.target ?? '',
  },
  { node: 'deflect', name: 'Deflect', command: 'deflect', fields: [TARGET], argument: (v) => v.target ?? '' },
  {
    node: 'dnd',
    name: 'Do not disturb',
    command: 'dnd',
    fields: [
      {
        var: 'state',
        label: 'Do not disturb',
        type: 'list-single',
        options: [
          ['on', 'On'],
          ['off', 'Off'],
        ],
        required: true,
      },
    ],
    argument: (v) => v.state ?? '',
  },
  {
    node: 'forward',
    name: 'Forwarding',
    command: 'forward',
    fields: [
      { var: 'target', label: 'Forward all calls to (empty: off)', type: 'text-single', required: false },
    ],
    argument: (v) => (v.target === undefined || v.target.trim() === '' ? 'off' : v.target),
  },
  {
    node: 'share',
    name: 'Phone sharing',
    command: 'share',
    instructions: 'share',
    fields: [
      {
        var: 'contact',
        label: 'Contact: user name, number or JID (empty: list your settings)',
        type: 'text-single',
        required: false,
      },
      {
        var: 'level',
        label: 'What they see of your phone',
        type: 'list-single',
        options: [
          ['none', 'Nothing (looks offline)'],
          ['state', 'State without numbers'],
          ['numbers', 'State with the other party’s number'],
          ['default', 'The administrator’s setting'],
        ],
        required: false,
      },
    ],
    argument: (v) => {
      const contact = (v.contact ?? '').trim();
      return contact === '' ? '' : `${contact} ${(v.level ?? '').trim()}`.trim();
    },
  },
];

interface Session {
  spec: CommandSpec;
  jid: string;
  expires: number;
}

export class AdHocCommands {
  private readonly jid: string;
  private readonly xmpp: XmppSide;
  private readonly phone: PhoneService;
  private readonly sessions = new Map<string, Session>();

  constructor(jid: string, xmpp: XmppSide, phone: PhoneService) {
    this.jid = jid;
    this.xmpp = xmpp;
    this.phone = phone;
  }

  /** True for the iqs this class answers: command execution and the command lists in disco. */
  handles(iq: Element): boolean {
    if (iq.attr('type') !== 'get' && iq.attr('type') !== 'set') return false;
    if ((iq.attr('to') ?? this.jid) !== this.jid) return false;
    const payload = iq.elements()[0];
    if (payload === undefined || iq.elements().length !== 1) return false;
    if (payload.ns === COMMANDS_NS && payload.name === 'command') return true;
    if (payload.ns === DISCO_ITEMS_NS && payload.attr('node') === COMMANDS_NS) return true;
    return payload.ns === DISCO_INFO_NS && COMMAND_SPECS.some((c) => c.node === payload.attr('node'));
  }

  handle(iq: Element): void {
    const payload = iq.elements()[0]!;
    if (payload.ns === DISCO_ITEMS_NS) {
      const query = new Element('query', DISCO_ITEMS_NS, { node: COMMANDS_NS });
      for (const c of COMMAND_SPECS) query.c('item', { jid: this.jid, node: c.node, name: c.name });
      this.reply(iq, query);
      return;
    }
    if (payload.ns === DISCO_INFO_NS) {
      const query = new Element('query', DISCO_INFO_NS, { node: payload.attr('node') });
      query.c('identity', {
        category: 'automation',
        type: 'command-node',
        name: COMMAND_SPECS.find((c) => c.node === payload.attr('node'))!.name,
      });
      query.c('feature', { var: COMMANDS_NS });
      query.c('feature', { var: DATA_NS });
      this.reply(iq, query);
      return;
    }
    if (iq.attr('type') !== 'set') {
      this.error(iq, 'modify', 'bad-request');
      return;
    }
    void this.execute(iq, payload);
  }

  private async execute(iq: Element, command: Element): Promise<void> {
    const from = iq.attr('from')!;
    const node = command.attr('node');
    const action = command.attr('action') ?? 'execute';
    const sessionId = command.attr('sessionid');
    this.expire();
    if (sessionId !== undefined) {
      const session = this.sessions.get(sessionId);
      if (session === undefined || session.jid !== from || session.spec.node !== node) {
        this.error(iq, 'modify', 'bad-request', 'bad-sessionid');
        return;
      }
      if (action === 'cancel') {
        this.sessions.delete(sessionId);
        this.reply(
          iq,
          new Element('command', COMMANDS_NS, { node, sessionid: sessionId, status: 'canceled' }),
        );
        return;
      }
      const form = command.getChild('x', DATA_NS);
      if (form === undefined || (form.attr('type') ?? 'submit') !== 'submit') {
        this.error(iq, 'modify', 'bad-request', 'bad-payload');
        return;
      }
      this.sessions.delete(sessionId);
      const values: Record<string, string> = {};
      for (const field of form.getChildren('field')) {
        const v = field.attr('var');
        if (v !== undefined) values[v] = field.getChildText('value') ?? '';
      }
      const missing = session.spec.fields.find((f) => f.required && (values[f.var] ?? '').trim() === '');
      if (missing !== undefined) {
        this.error(iq, 'modify', 'bad-request', 'bad-payload', `${missing.label} is required`);
        return;
      }
      await this.complete(iq, session.spec, sessionId, session.spec.argument?.(values) ?? '');
      return;
    }
    const spec = COMMAND_SPECS.find((c) => c.node === node);
    if (spec === undefined) {
      this.error(iq, 'cancel', 'item-not-found');
      return;
    }
    if (action === 'cancel') {
      this.reply(iq, new Element('command', COMMANDS_NS, { node, status: 'canceled' }));
      return;
    }
    const id = randomBytes(8).toString('hex');
    if (spec.fields.length === 0) {
      await this.complete(iq, spec, id, '');
      return;
    }
    if (this.sessions.size >= 10_000) {
      this.error(iq, 'wait', 'resource-constraint');
      return;
    }
    this.sessions.set(id, { spec, jid: from, expires: Date.now() + 5 * 60_000 });
    const response = new Element('command', COMMANDS_NS, { node, sessionid: id, status: 'executing' });
    response.c('actions', { execute: 'complete' }).c('complete');
    const x = response.c('x', { type: 'form' }, DATA_NS);
    x.c('title').append(spec.name);
    if (spec.instructions !== undefined) {
      x.c('instructions').append((await this.phone.execute(from, spec.instructions, '')).notes.join('\n'));
    }
    for (const f of spec.fields) {
      const field = x.c('field', { var: f.var, type: f.type, label: f.label });
      if (f.required) field.c('required');
      for (const [value, label] of f.options ?? []) field.c('option', { label }).c('value').append(value);
    }
    this.reply(iq, response);
  }

  private async complete(iq: Element, spec: CommandSpec, sessionId: string, argument: string): Promise<void> {
    const result = await this.phone.execute(iq.attr('from')!, spec.command, argument);
    const response = new Element('command', COMMANDS_NS, {
      node: spec.node,
      sessionid: sessionId,
      status: 'completed',
    });
    for (const note of result.notes) response.c('note', { type: result.ok ? 'info' : 'error' }).append(note);
    this.reply(iq, response);
  }

  private expire(): void {
    const now = Date.now();
    for (const [id, s] of this.sessions) if (s.expires < now) this.sessions.delete(id);
  }

  private reply(iq: Element, payload: Element): void {
    const result = stanza('iq', { type: 'result', id: iq.attr('id'), from: this.jid, to: iq.attr('from') });
    result.append(payload);
    this.xmpp.send(result);
  }

  private error(iq: Element, type: string, condition: string, specific?: string, text?: string): void {
    const error = stanza('iq', { type: 'error', id: iq.attr('id'), from: this.jid, to: iq.attr('from') });
    const body = error.c('error', { type });
    body.c(condition, {}, STANZA_ERRORS_NS);
    if (text !== undefined) body.c('text', {}, STANZA_ERRORS_NS).append(text);
    if (specific !== undefined) body.c(specific, {}, COMMANDS_NS);
    this.xmpp.send(error);
  }
}
