/**
 * Configuration (SPEC.md §2): a TOML file (`--config FILE`), then `SWITCHBOARD_SECTION_KEY` environment
 * variables (e.g. SWITCHBOARD_XMPP_C2S_PORT=5223), validated with zod. A bad value fails with one line
 * naming the key and the problem.
 */
import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';

/** Numbers and booleans may arrive as strings from the environment. */
const num = (schema: z.ZodNumber) =>
  z.preprocess(
    (v) => (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v)) ? Number(v) : v),
    schema,
  );
const bool = () =>
  z.preprocess((v) => {
    if (typeof v !== 'string') return v;
    const s = v.trim().toLowerCase();
    if (s === 'true' || s === '1' || s === 'yes') return true;
    if (s === 'false' || s === '0' || s === 'no') return false;
    return v;
  }, z.boolean());
const port = () => num(z.number().int().min(0).max(65535));
const seconds = () => num(z.number().positive().max(86_400));
const host = () => z.string().min(1);
const shareLevel = () => z.enum(['none', 'state', 'numbers']);

const httpSchema = z.strictObject({
  port: port().default(5280),
  host: host().default('127.0.0.1'),
});

const iqAccess = z.enum(['none', 'get', 'set', 'both']);

/** XEP-0356 permissions of one component ([xmpp.privileges."DOMAIN"]). */
const privilegeSchema = z.strictObject({
  roster: iqAccess.default('none'),
  /** Roster pushes to the component (XEP-0356 §3.3); default on for roster get/both. */
  roster_push: bool().optional(),
  message: z.enum(['none', 'outgoing']).default('none'),
  /** 'roster' (every contact's presence) is not implemented. */
  presence: z.enum(['none', 'managed_entity']).default('none'),
  /** Payload namespace = the iq types the component may send as a user. */
  iq: z.record(z.string().min(1), iqAccess).default({}),
});

export type PrivilegeConfig = z.infer<typeof privilegeSchema>;

const xmppSchema = z.strictObject({
  domain: z.string().min(1).default('localhost'),
  host: host().default('127.0.0.1'),
  c2s_port: port().default(5222),
  component_port: port().default(5347),
  /** Secret of the gateway component ([gateway] jid). */
  component_secret: z.string().min(1).optional(),
  /** More components: domain = secret. */
  components: z.record(z.string().min(1), z.string().min(1)).default({}),
  /**
   * XEP-0356: the gateway component ([gateway] jid) gets what it needs to publish phone state as PEP
   * (iq pubsub set, message outgoing, roster get, presence managed_entity) unless this is false or
   * [xmpp.privileges] has an entry for it.
   */
  gateway_privileges: bool().default(true),
  /** XEP-0356 permissions per component domain. */
  privileges: z.record(z.string().min(1), privilegeSchema).default({}),
  ping_interval_s: seconds().default(60),
  ping_timeout_s: seconds().default(10),
  /** Seconds from connecting to a bound resource (stream header, TLS, SASL, bind). */
  negotiation_timeout_s: seconds().default(30),
  /** Bytes of unsent output a client may keep for longer than ping_timeout_s. */
  output_buffer_limit: num(z.number().int().min(16_384)).default(1_048_576),
  max_sessions_per_account: num(z.number().int().min(0)).default(10),
  connections_per_minute: num(z.number().int().min(0)).default(60),
  auth_failures_per_minute: num(z.number().int().min(0)).default(10),
  /** Addresses without rate limits; from the environment as a comma-separated list. */
  /** XEP-0198: seconds a dropped session waits for resumption. */
  resume_timeout_s: seconds().default(300),
  /** XEP-0198: iq get/set to a session waiting for resumption: "error" at once, or "queue". */
  iq_during_resumption: z.enum(['error', 'queue']).default('error'),
  rate_limit_exempt: z
    .preprocess(
      (v) =>
        typeof v === 'string'
          ? v
              .split(',')
              .map((a) => a.trim())
              .filter((a) => a !== '')
          : v,
      z.array(z.string().min(1)),
    )
    .default(['127.0.0.1', '::1']),
  /** Unset: `switchboard xmpp` says no, `switchboard up` (a one-machine setup) says yes. */
  allow_plain_loopback: bool().optional(),
  tls_cert: z.string().min(1).optional(),
  tls_key: z.string().min(1).optional(),
  offline_limit: num(z.number().int().min(0).max(100_000)).default(100),
});

const pbxSchema = z.strictObject({
  host: host().default('127.0.0.1'),
  sip_port: port().default(5060),
  csta_port: port().default(1040),
  csta_edition: z.enum(['ed3', 'ed4', 'ed5', 'ed6']).default('ed4'),
});

const gatewaySchema = z.strictObject({
  jid: z.string().min(1).optional(),
  xmpp_host: host().default('127.0.0.1'),
  xmpp_port: port().optional(),
  component_secret: z.string().min(1).optional(),
  csta_host: host().default('127.0.0.1'),
  csta_port: port().optional(),
  event_ack_timeout_s: seconds().default(10),
  /** Users' phone state as PEP where the text server grants XEP-0356 ("auto"), or never ("off"). */
  pep: z.enum(['auto', 'off']).default('auto'),
  /**
   * What subscribers of a phone contact who are not the phone's owner see (issue 9): `none`, `state`
   * (no numbers) or `numbers`. Owners may set it per subscriber from chat (`share`).
   */
  sharing: shareLevel().default('state'),
  /** Per-extension overrides of `sharing`; from the environment as "1001=numbers,1002=none". */
  sharing_devices: z
    .preprocess(
      (v) =>
        typeof v === 'string'
          ? Object.fromEntries(
              v
                .split(',')
                .filter((p) => p.trim() !== '')
                .map((p) => p.split('=').map((x) => x.trim())),
            )
          : v,
      z.record(z.string().regex(/^[0-9*#+]{1,32}$/, 'an extension (digits only)'), shareLevel()),
    )
    .default({}),
});

const userSchema = z.strictObject({
  name: z.string().min(1),
  password: z.string().min(1).optional(),
  extension: z
    .string()
    .regex(/^[0-9*#+]{1,32}$/, 'digits only')
    .optional(),
  sip_password: z.string().min(1).optional(),
  jid: z.string().min(3).optional(),
});

export const configSchema = z.strictObject({
  data_dir: z.string().min(1).optional(),
  log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  http: httpSchema.default(httpSchema.parse({})),
  xmpp: xmppSchema.default(xmppSchema.parse({})),
  pbx: pbxSchema.default(pbxSchema.parse({})),
  gateway: gatewaySchema.default(gatewaySchema.parse({})),
  users: z.array(userSchema).default([]),
});

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const SECTIONS = ['http', 'xmpp', 'pbx', 'gateway'] as const;

/** SWITCHBOARD_XMPP_C2S_PORT -> xmpp.c2s_port; SWITCHBOARD_DATA_DIR, SWITCHBOARD_LOG_LEVEL at top level. */
function fromEnv(env: NodeJS.ProcessEnv, raw: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('SWITCHBOARD_') || value === undefined) continue;
    const rest = name.slice('SWITCHBOARD_'.length).toLowerCase();
    if (rest === 'data_dir' || rest === 'log_level') {
      raw[rest] = value;
      continue;
    }
    const section = SECTIONS.find((s) => rest.startsWith(`${s}_`));
    if (section === undefined) continue;
    const key = rest.slice(section.length + 1);
    const current = raw[section];
    const table = typeof current === 'object' && current !== null && !Array.isArray(current) ? current : {};
    raw[section] = { ...table, [key]: value };
  }
}

function describe(issue: z.core.$ZodIssue): string {
  const key = issue.path.length === 0 ? '(top level)' : issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    const base = issue.path.length === 0 ? '' : `${issue.path.map(String).join('.')}.`;
    return `${base}${issue.keys.join(', ')}: unknown key`;
  }
  return `${key}: ${issue.message}`;
}

/**
 * Loads and validates the configuration. Throws ConfigError with a one-line message
 * ("config: xmpp.c2s_port: Too big: expected number to be <=65535").
 */
export function loadConfig(options: { file?: string | undefined; env?: NodeJS.ProcessEnv } = {}): Config {
  let raw: Record<string, unknown> = {};
  if (options.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(options.file, 'utf8');
    } catch (e) {
      throw new ConfigError(`config: cannot read ${options.file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
    }
    try {
      raw = parseToml(text) as Record<string, unknown>;
    } catch (e) {
      const line = (e as Error).message.split('\n')[0];
      throw new ConfigError(`config: ${options.file} is not valid TOML: ${line}`);
    }
  }
  fromEnv(options.env ?? process.env, raw);
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(`config: ${describe(result.error.issues[0]!)}`);
  return result.data;
}

/** The gateway component's JID: [gateway] jid, default cti.<domain> (SPEC.md §2). */
export function gatewayJid(config: Config): string {
  return config.gateway.jid ?? `cti.${config.xmpp.domain}`;
}
