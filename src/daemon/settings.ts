import os from 'node:os';
import { GuardError, usageError } from '../core/errors.js';
import { parseDuration, parsePositiveInt } from '../core/duration.js';
import { pick } from '../core/config.js';
import type { StateKind } from '../gate/open-state.js';
import { parseCidrList } from '../gate/ip.js';
import { isRedisUrl, parseRedisStateUrl } from '../gate/redis-url.js';
import { parseKeyStore, type KeyStoreSpec } from '../keys/store-spec.js';
import type { Dtype, EngineSettings } from '../infer/types.js';
import type { ServerSettings } from '../server/config.js';

/**
 * Every `guardctl serve` setting in one table: its flag, parser and default. The environment variable and the
 * config-file key follow from the flag (`--max-body` -> `GUARDCTL_MAX_BODY` -> `serve.max_body`), and the field is
 * the flag in camelCase with its unit (`maxBodyBytes`), the same name in ServeSettings, the server's settings
 * (src/server/config.ts) and the engine's (src/infer/types.ts). The command's flags, `--help`, docs/serve.md and
 * the precedence (flag > env > file > default) all come from here; test/daemon/settings.test.ts checks the rule.
 */
export interface SettingDef {
  key: keyof ServeSettings;
  flag: string;
  /** GUARDCTL_ and the flag's name in upper snake case. */
  env: string;
  /** The flag's name in snake case, in the file's `serve:` section; `gate.NAME` / `keys.NAME`: in that section. */
  configKey: string;
  description: string;
  default: string | boolean | undefined;
  /** Text (from a flag, a variable or the file) to a valid value, or a usage error naming `where`. */
  parse: (text: string, where: string) => unknown;
  /** The field's unit, named by its suffix: durations in Ms, sizes in Bytes. */
  unit?: 'ms' | 'bytes';
  boolean?: true;
  /** Former names still read (flag, variable, file key), with a warning naming the new one. */
  formerly?: { flag: string; env: string; configKey: string };
}

export interface ServeSettings extends EngineSettings, ServerSettings {
  host: string;
  port: number;
  device: 'auto' | 'cpu' | 'webgpu';
  dtype: Dtype;
  drainTimeoutMs: number;
  tlsCert?: string;
  tlsKey?: string;
  auditFile?: string;
  /** Where the gate keeps nonces, rate buckets, quotas and blocks: a file under the home, memory, or Redis/Valkey. */
  state: StateKind;
  /** Where keys live: sqlite (<home>/keys.db) or a postgres:// URL shared by several daemons. */
  keys: KeyStoreSpec;
  /** With PostgreSQL: how long cached keys keep working once it stops answering (0: refuse at once). */
  keysStaleMs: number;
  /** Proxies whose X-Forwarded-For names the client (CIDRs); over the file's gate.trusted_proxies. */
  trustedProxies?: string[];
}

const oneOf = <T extends string>(values: readonly T[]) => (text: string, where: string): T => {
  if (!(values as readonly string[]).includes(text)) throw usageError(`${where} must be one of ${values.join(', ')}, got "${text}"`);
  return text as T;
};
const stateKind = (text: string, where: string): StateKind => {
  if (isRedisUrl(text)) {
    parseRedisStateUrl(text, where);
    return text as StateKind;
  }
  if (text !== 'sqlite' && text !== 'memory') throw usageError(`${where} must be one of sqlite, memory, or a redis://[user:pass@]host:port[/db] URL, got "${text}"`);
  return text;
};
const int = (text: string, where: string) => parsePositiveInt(text, where);
/** A duration (a bare number is seconds); 0 allowed. */
const ms = (text: string, where: string) => (/^\d+$/.test(text) ? Number(text) * 1000 : parseDuration(text, where));
/** A duration of at least 1 ms: a timer that must run. */
const positiveMs = (text: string, where: string) => {
  const value = ms(text, where);
  if (value < 1) throw usageError(`${where} must be a duration of at least 1ms, got "${text}"`, 'for example 30s or 2m');
  return value;
};
const bytes = (text: string, where: string): number => {
  const m = /^(\d+)([kmg]?)b?$/i.exec(text.trim());
  if (!m) throw usageError(`${where} must be a size such as 512k, 1m or 2g, got "${text}"`);
  const value = Number(m[1]) * ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as Record<string, number>)[m[2]!.toLowerCase()]!;
  if (value < 1) throw usageError(`${where} must be at least 1 byte, got "${text}"`, 'give a size such as 512k, 1m or 2g');
  return value;
};
const basePath = (text: string, where: string): string => {
  if (text === '' || text === '/') return '';
  if (!/^\/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-]$/.test(text) || text.includes('//')) throw usageError(`${where} must look like /guard (no trailing slash), got "${text}"`);
  return text;
};
const text = (t: string) => t;
/** Comma-separated CIDRs, each checked here so a typo stops the start with the flag named. */
const cidrs = (t: string, where: string): string[] => {
  // Empty (the file's `trusted_proxies: []`): no proxy is trusted, as without the setting.
  const list = t.split(',').map((x) => x.trim()).filter((x) => x !== '');
  try {
    parseCidrList(list);
  } catch (err) {
    throw usageError(`${where} must be comma-separated CIDRs such as 127.0.0.1/32,::1/128: ${(err as Error).message}`);
  }
  return list;
};
const port = (t: string, where: string) => {
  const n = Number(t);
  if (!/^\d+$/.test(t) || n < 0 || n > 65535) throw usageError(`${where} must be a port number (0-65535), got "${t}"`);
  return n;
};

type Row = Omit<SettingDef, 'env' | 'configKey'> & { configKey?: string };

/** The names that follow from the flag: --max-body -> GUARDCTL_MAX_BODY and max_body. */
export function namesOf(flag: string): { name: string; env: string; configKey: string } {
  const name = flag.split(' ')[0]!.replace(/^--/, '');
  return { name, env: `GUARDCTL_${name.toUpperCase().replace(/-/g, '_')}`, configKey: name.replace(/-/g, '_') };
}

const row = (r: Row): SettingDef => {
  const { env, configKey } = namesOf(r.flag);
  return { ...r, env, configKey: r.configKey ?? configKey };
};

export const SETTINGS: SettingDef[] = ([
  { key: 'host', flag: '--host <addr>', description: 'address to listen on', default: '127.0.0.1', parse: text },
  { key: 'port', flag: '--port <n>', description: 'port to listen on (0: any free port)', default: '7860', parse: port },
  { key: 'device', flag: '--device <d>', description: 'auto, cpu or webgpu', default: 'auto', parse: oneOf(['auto', 'cpu', 'webgpu'] as const) },
  { key: 'dtype', flag: '--dtype <t>', description: 'weights file onnx/model_<dtype>.onnx: fp32 (onnx/model.onnx), fp16, q4, q4f16, int8', default: 'fp32', parse: oneOf(['fp32', 'fp16', 'q4', 'q4f16', 'int8'] as const) },
  { key: 'threads', flag: '--threads <n|auto>', description: 'ONNX Runtime CPU threads; auto leaves one core to HTTP and the gate', default: 'auto', parse: (t, w) => (t === 'auto' ? autoThreads() : int(t, w)) },
  { key: 'maxBatch', flag: '--max-batch <n>', description: 'most sequences decoded together', default: '32', parse: int },
  { key: 'maxWaitMs', flag: '--max-wait-ms <n>', description: 'how long a batch forming behind a busy device waits for more requests (an idle device starts at once)', default: '5', parse: (t, w) => (t === '0' ? 0 : int(t, w)), unit: 'ms' },
  { key: 'batchWait', flag: '--batch-wait <when>', description: 'when a forming batch waits --max-wait-ms: busy (behind a busy device only) or always (a lone request waits too: throughput over latency)', default: 'busy', parse: oneOf(['busy', 'always'] as const) },
  { key: 'maxBatchTokens', flag: '--max-batch-tokens <n>', description: 'most tokens one prefill processes, padding included (rows x longest prompt)', default: '16384', parse: int },
  { key: 'prefixCache', flag: '--prefix-cache <on|off>', description: 'prefill the prompt head every request of a model shares once and reuse its KV (off: prefill every prompt in full)', default: 'on', parse: onOff },
  { key: 'maxQueue', flag: '--max-queue <n>', description: 'waiting requests per device before 503', default: '256', parse: int },
  { key: 'maxInputTokens', flag: '--max-input-tokens <n>', description: 'longest prompt accepted (422 beyond)', default: '2048', parse: int },
  { key: 'maxNewTokens', flag: '--max-new-tokens <n>', description: 'longest answer generated', default: '256', parse: int },
  { key: 'maxBodyBytes', flag: '--max-body <size>', description: 'largest request body (413 beyond)', default: '1m', parse: bytes, unit: 'bytes' },
  {
    key: 'inferenceTimeoutMs', flag: '--inference-timeout <duration>', description: 'time a request may spend in the engine, queue included (504 beyond)', default: '60s', parse: positiveMs, unit: 'ms',
    formerly: { flag: '--request-timeout <duration>', env: 'GUARDCTL_REQUEST_TIMEOUT', configKey: 'request_timeout' },
  },
  { key: 'receiveTimeoutMs', flag: '--receive-timeout <duration>', description: 'time to receive a whole request from the client, headers and body (408 beyond)', default: '30s', parse: positiveMs, unit: 'ms' },
  { key: 'drainTimeoutMs', flag: '--drain-timeout <duration>', description: 'on SIGTERM/SIGINT, how long in-flight requests may finish', default: '30s', parse: ms, unit: 'ms' },
  { key: 'basePath', flag: '--base-path <path>', description: 'serve under a sub-path, e.g. /guard (also the signed PATH prefix)', default: '', parse: basePath },
  { key: 'tlsCert', flag: '--tls-cert <file>', description: 'serve HTTPS with this certificate chain (reloaded on SIGHUP and change)', default: undefined, parse: text },
  { key: 'tlsKey', flag: '--tls-key <file>', description: 'the private key for --tls-cert', default: undefined, parse: text },
  { key: 'insecureNoAuth', flag: '--insecure-no-auth', description: 'no signatures (local experiments only; binds to loopback)', default: false, parse: (t, w) => parseBool(t, w), boolean: true },
  { key: 'allowPartial', flag: '--allow-partial', description: 'when a model fails to load, serve the others (without it serve stops with the model\'s error, exit 1)', default: false, parse: (t, w) => parseBool(t, w), boolean: true },
  { key: 'state', flag: '--state <kind>', configKey: 'gate.state', description: 'gate state: sqlite (<home>/gate-state.db, survives restarts), memory (lost on restart), or redis://[user:pass@]host:port[/db] shared by several daemons (rediss:// for TLS; Valkey too)', default: 'sqlite', parse: stateKind },
  { key: 'keys', flag: '--keys <store>', configKey: 'keys.store', description: 'key store: sqlite (<home>/keys.db) or postgres://USER:PASSWORD@HOST:PORT/DB shared by several daemons (run guardctl keys migrate first)', default: 'sqlite', parse: parseKeyStore },
  { key: 'keysStaleMs', flag: '--keys-stale <duration>', configKey: 'keys.stale', description: 'with PostgreSQL keys: how long cached keys keep working while it is unreachable (0: refuse at once)', default: '60s', parse: (t, w) => (t === '0' ? 0 : ms(t, w)), unit: 'ms' },
  { key: 'trustedProxies', flag: '--trusted-proxies <cidrs>', configKey: 'gate.trusted_proxies', description: 'proxies (comma-separated CIDRs) whose X-Forwarded-For names the client for rate limits, IP allow-lists and the audit; list the nginx host', default: undefined, parse: cidrs },
  { key: 'auditFile', flag: '--audit-file <file>', description: 'audit log (default <home>/audit/audit.jsonl)', default: undefined, parse: text },
] satisfies Row[]).map(row);

// Every field of each part's settings, so that a field added there and not here fails to compile.
const ENGINE_FIELDS: Record<keyof EngineSettings, true> = {
  maxBatch: true, maxWaitMs: true, batchWait: true, maxBatchTokens: true, prefixCache: true, maxQueue: true, maxInputTokens: true, threads: true,
};
const SERVER_FIELDS: Record<keyof ServerSettings, true> = {
  basePath: true, maxBodyBytes: true, receiveTimeoutMs: true, inferenceTimeoutMs: true, maxNewTokens: true, insecureNoAuth: true, allowPartial: true,
};
const only = <T>(s: ServeSettings, fields: Record<string, true>): T => Object.fromEntries(Object.keys(fields).map((k) => [k, s[k as keyof ServeSettings]])) as T;

/** The settings the engine reads, as they are. */
export const engineSettings = (s: ServeSettings): EngineSettings => only(s, ENGINE_FIELDS);
/** The settings the HTTP side reads, as they are. */
export const serverSettings = (s: ServeSettings): ServerSettings => only(s, SERVER_FIELDS);

/** All cores but one (for the event loop: HTTP, the gate, tokenization), at least one. */
export function autoThreads(): number {
  return Math.max(1, os.availableParallelism() - 1);
}

/** on/off, and what a YAML file may turn them into (true/false). */
function onOff(t: string, where: string): boolean {
  if (['on', 'true'].includes(t.toLowerCase())) return true;
  if (['off', 'false'].includes(t.toLowerCase())) return false;
  throw usageError(`${where} must be on or off, got "${t}"`);
}

function parseBool(t: string, where: string): boolean {
  if (['1', 'true', 'yes', 'on'].includes(t.toLowerCase())) return true;
  if (['0', 'false', 'no', 'off', ''].includes(t.toLowerCase())) return false;
  throw usageError(`${where} must be true or false, got "${t}"`);
}

/** commander's name for a flag's value: --max-body -> maxBody. */
export function attributeOf(flag: string): string {
  return namesOf(flag).name.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/**
 * flags (by setting key; a former flag by its own attribute name, e.g. requestTimeout; undefined when not given) >
 * env > config file `serve:` > defaults. A config key written `gate.NAME` / `keys.NAME` is read from that section
 * of the file. A bad flag is a usage error (exit 2); a bad variable or file value is GUARD_E_CONFIG (exit 1); both
 * name the flag, variable or file key that held it. Former names are read with a warning through `warn`.
 */
export function resolveSettings(
  flags: Record<string, unknown>, env: NodeJS.ProcessEnv, fileSection: Record<string, unknown>, source: string,
  gateSection: Record<string, unknown> = {}, keysSection: Record<string, unknown> = {}, warn: (message: string) => void = () => {},
): ServeSettings {
  const known = new Set(SETTINGS.flatMap((s) => [s.configKey, ...(s.formerly ? [s.formerly.configKey] : [])]));
  for (const key of Object.keys(fileSection)) {
    if (!known.has(key)) throw new GuardError('GUARD_E_CONFIG', `unknown setting serve.${key} in ${source}`, { hint: `known: ${[...known].join(', ')}` });
  }
  const fileValue = (configKey: string): string | undefined => {
    const [section, key] = configKey.startsWith('gate.') ? [gateSection, configKey.slice(5)] : configKey.startsWith('keys.') ? [keysSection, configKey.slice(5)] : [fileSection, configKey];
    const v = section[key];
    return v === undefined || v === null ? undefined : String(v);
  };
  const fileWhere = (configKey: string) => `${/^(gate|keys)\./.test(configKey) ? '' : 'serve.'}${configKey} in ${source}`;
  const out: Record<string, unknown> = {};
  for (const def of SETTINGS) {
    const flag = def.flag.split(' ')[0]!;
    // Each source in precedence order, a former name right after the current one of the same kind.
    const candidates: Array<{ raw: unknown; where: string; fromFlag: boolean; former?: string }> = [
      { raw: flags[def.key], where: flag, fromFlag: true },
      ...(def.formerly ? [{ raw: flags[attributeOf(def.formerly.flag)], where: def.formerly.flag.split(' ')[0]!, fromFlag: true, former: flag }] : []),
      { raw: env[def.env] === '' ? undefined : env[def.env], where: def.env, fromFlag: false },
      ...(def.formerly ? [{ raw: env[def.formerly.env] === '' ? undefined : env[def.formerly.env], where: def.formerly.env, fromFlag: false, former: def.env }] : []),
      { raw: fileValue(def.configKey), where: fileWhere(def.configKey), fromFlag: false },
      ...(def.formerly ? [{ raw: fileValue(def.formerly.configKey), where: fileWhere(def.formerly.configKey), fromFlag: false, former: `serve.${def.configKey}` }] : []),
    ];
    const given = candidates.find((c) => c.raw !== undefined && c.raw !== false);
    if (given) {
      if (given.former) warn(`${given.where.split(' in ')[0]} is now called ${given.former}; the old name still works for now`);
      out[def.key] = def.boolean && given.fromFlag ? true : parseFrom(def, String(given.raw), given.where, given.fromFlag);
    } else if (def.default !== undefined) {
      out[def.key] = typeof def.default === 'boolean' ? def.default : def.parse(def.default, flag);
    }
  }
  const s = out as unknown as ServeSettings;
  if (Boolean(s.tlsCert) !== Boolean(s.tlsKey)) throw usageError('--tls-cert and --tls-key go together', 'give both, or neither for plain HTTP (behind nginx)');
  return s;
}

/** A value from a variable or the file is configuration, not command-line usage: GUARD_E_CONFIG, exit 1. */
function parseFrom(def: SettingDef, raw: string, where: string, fromFlag: boolean): unknown {
  try {
    return def.parse(raw, where);
  } catch (err) {
    if (fromFlag || !(err instanceof GuardError) || err.code !== 'GUARD_E_USAGE') throw err;
    throw new GuardError('GUARD_E_CONFIG', err.message, { hint: err.hint, cause: err.cause });
  }
}
