/**
 * How much of a phone's state its phone contact shows to a subscriber who is not its owner (issue 9,
 * item 3; SPEC.md §4: caller numbers go only to the owner unless configured otherwise).
 *
 * - `none`: nothing; the phone contact looks unavailable (and a subscription is refused when that comes
 *   from the administrator's settings rather than from the owner).
 * - `state`: "On the phone", "Ringing", "Idle", … without the other party.
 * - `numbers`: the same with the other party's number, as the owner sees it.
 *
 * The level for a subscriber is the owner's setting for that subscriber, else the administrator's
 * setting for the device, else the administrator's default (`state`). The owner always sees everything;
 * the caller of `level()` decides who the owner is. Owners' settings are kept in a JSON file.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { normalizeDevice } from './authorization.ts';
import type { PhonePresence } from './device-state.ts';
import type { Logger } from './gateway.ts';

export const SHARE_LEVELS = ['none', 'state', 'numbers'] as const;
export type ShareLevel = (typeof SHARE_LEVELS)[number];

export function isShareLevel(value: unknown): value is ShareLevel {
  return typeof value === 'string' && (SHARE_LEVELS as readonly string[]).includes(value);
}

/** What each level means, for answers in the chat. */
export const LEVEL_MEANING: Record<ShareLevel, string> = {
  none: 'nothing (your phone looks offline)',
  state: 'whether you are on the phone, without numbers',
  numbers: 'your phone state with the other party’s number',
};

/** Settings an owner may keep for one phone; more are refused (the file and memory stay bounded). */
export const MAX_SETTINGS_PER_PHONE = 500;

export interface SharingOptions {
  /** The administrator's default for subscribers who are not the owner (default `state`). */
  default?: ShareLevel;
  /** The administrator's level per extension, over the default. */
  devices?: Record<string, ShareLevel>;
  /** Where owners' per-subscriber settings are kept across restarts; undefined keeps them in memory. */
  file?: string;
  log: Logger;
}

/** The presence a subscriber is shown: what the phone does, cut down to their level. */
export interface SharedPresence {
  available: boolean;
  show: 'dnd' | 'xa' | undefined;
  status: string | undefined;
}

/** `presence` as a subscriber with `level` may see it. */
export function sharedPresence(presence: PhonePresence, level: ShareLevel): SharedPresence {
  if (level === 'none') return { available: false, show: undefined, status: undefined };
  return {
    available: presence.available,
    show: presence.available ? presence.show : undefined,
    status: level === 'numbers' ? presence.detailedStatus : presence.status,
  };
}

export class SharingPolicy {
  private readonly defaultLevel: ShareLevel;
  private readonly devices = new Map<string, ShareLevel>();
  /** extension → subscriber bare JID → the owner's setting. */
  private readonly settings = new Map<string, Map<string, ShareLevel>>();
  private readonly file: string | undefined;
  private readonly log: Logger;

  constructor(options: SharingOptions) {
    this.defaultLevel = options.default ?? 'state';
    for (const [ext, level] of Object.entries(options.devices ?? {}))
      this.devices.set(normalizeDevice(ext), level);
    this.file = options.file;
    this.log = options.log;
    this.load();
  }

  /** The administrator's level for a device (its override, else the default). */
  deviceLevel(extension: string): ShareLevel {
    return this.devices.get(extension) ?? this.defaultLevel;
  }

  /** The owner's own setting for a subscriber, if any. */
  setting(extension: string, subscriber: string): ShareLevel | undefined {
    return this.settings.get(extension)?.get(subscriber);
  }

  /** What a subscriber who is not the owner sees of the phone. */
  level(extension: string, subscriber: string): ShareLevel {
    return this.setting(extension, subscriber) ?? this.deviceLevel(extension);
  }

  /**
   * True when a subscription to the phone should be refused: the administrator shares nothing of it and
   * its owner has not said otherwise for this subscriber. (An owner's own `none` keeps the subscription,
   * showing the phone as offline, so that sharing again needs nothing from the subscriber.)
   */
  refuses(extension: string, subscriber: string): boolean {
    return this.setting(extension, subscriber) === undefined && this.deviceLevel(extension) === 'none';
  }

  /** The owner's settings for a phone, by subscriber JID. */
  settingsFor(extension: string): [string, ShareLevel][] {
    return [...(this.settings.get(extension) ?? [])].sort(([a], [b]) => a.localeCompare(b));
  }

  /**
   * Sets (or with `undefined` clears, back to the administrator's level) the owner's setting for a
   * subscriber. Returns false when the phone already has MAX_SETTINGS_PER_PHONE other settings.
   */
  set(extension: string, subscriber: string, level: ShareLevel | undefined): boolean {
    let forPhone = this.settings.get(extension);
    if (level === undefined) {
      if (forPhone?.delete(subscriber)) {
        if (forPhone.size === 0) this.settings.delete(extension);
        this.save();
      }
      return true;
    }
    if (forPhone === undefined) {
      forPhone = new Map();
      this.settings.set(extension, forPhone);
    }
    if (!forPhone.has(subscriber) && forPhone.size >= MAX_SETTINGS_PER_PHONE) return false;
    if (forPhone.get(subscriber) === level) return true;
    forPhone.set(subscriber, level);
    this.save();
    return true;
  }

  private load(): void {
    if (this.file === undefined || !existsSync(this.file)) return;
    let data: unknown;
    try {
      data = JSON.parse(readFileSync(this.file, 'utf8'));
    } catch (e) {
      this.log.warn({ file: this.file, err: (e as Error).message }, 'ignoring unreadable sharing file');
      return;
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) {
      this.log.warn({ file: this.file }, 'ignoring sharing file that is not a JSON object');
      return;
    }
    let skipped = 0;
    for (const [ext, entries] of Object.entries(data as Record<string, unknown>)) {
      if (typeof entries !== 'object' || entries === null || Array.isArray(entries)) {
        skipped++;
        continue;
      }
      const forPhone = new Map<string, ShareLevel>();
      for (const [jid, level] of Object.entries(entries as Record<string, unknown>)) {
        if (isShareLevel(level) && forPhone.size < MAX_SETTINGS_PER_PHONE) forPhone.set(jid, level);
        else skipped++;
      }
      if (forPhone.size > 0) this.settings.set(ext, forPhone);
    }
    if (skipped > 0) this.log.warn({ file: this.file, skipped }, 'ignoring bad entries in the sharing file');
  }

  private save(): void {
    if (this.file === undefined) return;
    const data: Record<string, Record<string, ShareLevel>> = {};
    for (const [ext] of [...this.settings].sort(([a], [b]) => a.localeCompare(b)))
      data[ext] = Object.fromEntries(this.settingsFor(ext));
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(data, null, 1), { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}

/** A `share` chat command's argument: nothing (list), or a contact and a level (`default` clears). */
export type ShareRequest =
  | { kind: 'list' }
  | { kind: 'set'; contact: string; level: ShareLevel | undefined }
  | { kind: 'usage' };

export function parseShareArgument(argument: string): ShareRequest {
  const words = argument
    .trim()
    .split(/\s+/)
    .filter((w) => w !== '');
  if (words.length === 0) return { kind: 'list' };
  if (words.length !== 2) return { kind: 'usage' };
  const [contact, word] = words as [string, string];
  const level = word.toLowerCase();
  if (level === 'default') return { kind: 'set', contact, level: undefined };
  return isShareLevel(level) ? { kind: 'set', contact, level } : { kind: 'usage' };
}

export const SHARE_USAGE =
  'Say "share <contact> none|state|numbers" (or "default" for the administrator’s setting); "share" alone lists.';
