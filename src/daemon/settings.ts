import os from 'node:os';
import { GuardError, usageError } from '../core/errors.js';
import { parseDuration, parsePositiveInt } from '../core/duration.js';
import { pick } from '../core/config.js';
import type { StateKind } from '../gate/open-state.js';
import { isRedisUrl, parseRedisStateUrl } from '../gate/redis-url.js';
import { parseKeyStore, type KeyStoreSpec } from '../keys/store-spec.js';
import type { Dtype } from '../infer/types.js';

/**
 * Every `guardctl serve` setting in one table: its flag, environment variable, key in the config file's
 * `serve:` section, parser and default. The command's flags, `--help`, docs/serve.md and the precedence
 * (flag > env > file > default) all come from here.
 */
export interface SettingDef {
  key: keyof ServeSettings;
  flag: string;
  env: string;
  configKey: string;
  description: string;
  default: string | boolean | undefined;
  parse: (text: string, where: string) => unknown;
  boolean?: true;
}

export interface ServeSettings {
  host: string;
  port: number;
  device: 'auto' | 'cpu' | 'webgpu';
  dtype: Dtype;
  /** ONNX Runtime intra-op threads on the CPU. */
  threads: number;
  maxBatch: number;
  maxWaitMs: number;
  /** Padded tokens (rows x longest prompt) one prefill may process. */
  maxBatchTokens: number;
  batchWait: 'busy' | 'always';
  /** Prefill each model's shared prompt head once and reuse its KV (off: every prompt in full, for comparison). */
  prefixCache: boolean;
  maxQueue: number;
  maxInputTokens: number;
  maxNewTokens: number;
  maxBodyBytes: number;
  requestTimeoutMs: number;
  drainTimeoutMs: number;
  basePath: string;
  tlsCert?: string;
  tlsKey?: string;
  insecureNoAuth: boolean;
  /** Keep serving the models that loaded when another fails (default: a failed model stops serve, exit 1). */
  allowPartial: boolean;
  auditFile?: string;
  /** Where the gate keeps nonces, rate buckets, quotas and blocks: a file under the home, memory, or Redis/Valkey. */
  state: StateKind;
  /** Where keys live: sqlite (<home>/keys.db) or a postgres:// URL shared by several daemons. */
  keys: KeyStoreSpec;
  /** With PostgreSQL: how long cached keys keep working once it stops answering (0: refuse at once). */
  keysStaleMs: number;
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
const ms = (text: string, where: string) => (/^\d+$/.test(text) ? Number(text) * 1000 : parseDuration(text, where));
const bytes = (text: string, where: string): number => {
  const m = /^(\d+)([kmg]?)b?$/i.exec(text.trim());
  if (!m) throw usageError(`${where} must be a size such as 512k, 1m or 2g, got "${text}"`);
  return Number(m[1]) * ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as Record<string, number>)[m[2]!.toLowerCase()]!;
};
const basePath = (text: string, where: string): string => {
  if (text === '' || text === '/') return '';
  if (!/^\/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-]$/.test(text) || text.includes('//')) throw usageError(`${where} must look like /guard (no trailing slash), got "${text}"`);
  return text;
};
const text = (t: string) => t;
const port = (t: string, where: string) => {
  const n = Number(t);
  if (!/^\d+$/.test(t) || n < 0 || n > 65535) throw usageError(`${where} must be a port number (0-65535), got "${t}"`);
  return n;
};

export const SETTINGS: SettingDef[] = [
  { key: 'host', flag: '--host <addr>', env: 'GUARDCTL_HOST', configKey: 'host', description: 'address to listen on', default: '127.0.0.1', parse: text },
  { key: 'port', flag: '--port <n>', env: 'GUARDCTL_PORT', configKey: 'port', description: 'port to listen on (0: any free port)', default: '7860', parse: port },
  { key: 'device', flag: '--device <d>', env: 'GUARDCTL_DEVICE', configKey: 'device', description: 'auto, cpu or webgpu', default: 'auto', parse: oneOf(['auto', 'cpu', 'webgpu'] as const) },
  { key: 'dtype', flag: '--dtype <t>', env: 'GUARDCTL_DTYPE', configKey: 'dtype', description: 'weights file onnx/model_<dtype>.onnx: fp32 (onnx/model.onnx), fp16, q4, q4f16, int8', default: 'fp32', parse: oneOf(['fp32', 'fp16', 'q4', 'q4f16', 'int8'] as const) },
  { key: 'threads', flag: '--threads <n|auto>', env: 'GUARDCTL_THREADS', configKey: 'threads', description: 'ONNX Runtime CPU threads; auto leaves one core to HTTP and the gate', default: 'auto', parse: (t, w) => (t === 'auto' ? autoThreads() : int(t, w)) },
  { key: 'maxBatch', flag: '--max-batch <n>', env: 'GUARDCTL_MAX_BATCH', configKey: 'max_batch', description: 'most sequences decoded together', default: '32', parse: int },
  { key: 'maxWaitMs', flag: '--max-wait-ms <n>', env: 'GUARDCTL_MAX_WAIT_MS', configKey: 'max_wait_ms', description: 'how long a batch forming behind a busy device waits for more requests (an idle device starts at once)', default: '5', parse: (t, w) => (t === '0' ? 0 : int(t, w)) },
  { key: 'batchWait', flag: '--batch-wait <when>', env: 'GUARDCTL_BATCH_WAIT', configKey: 'batch_wait', description: 'when a forming batch waits --max-wait-ms: busy (behind a busy device only) or always (a lone request waits too: throughput over latency)', default: 'busy', parse: oneOf(['busy', 'always'] as const) },
  { key: 'maxBatchTokens', flag: '--max-batch-tokens <n>', env: 'GUARDCTL_MAX_BATCH_TOKENS', configKey: 'max_batch_tokens', description: 'most tokens one prefill processes, padding included (rows x longest prompt)', default: '16384', parse: int },
  { key: 'prefixCache', flag: '--prefix-cache <on|off>', env: 'GUARDCTL_PREFIX_CACHE', configKey: 'prefix_cache', description: 'prefill the prompt head every request of a model shares once and reuse its KV (off: prefill every prompt in full)', default: 'on', parse: onOff },
  { key: 'maxQueue', flag: '--max-queue <n>', env: 'GUARDCTL_MAX_QUEUE', configKey: 'max_queue', description: 'waiting requests per device before 503', default: '256', parse: int },
  { key: 'maxInputTokens', flag: '--max-input-tokens <n>', env: 'GUARDCTL_MAX_INPUT_TOKENS', configKey: 'max_input_tokens', description: 'longest prompt accepted (422 beyond)', default: '2048', parse: int },
  { key: 'maxNewTokens', flag: '--max-new-tokens <n>', env: 'GUARDCTL_MAX_NEW_TOKENS', configKey: 'max_new_tokens', description: 'longest answer generated', default: '256', parse: int },
  { key: 'maxBodyBytes', flag: '--max-body <size>', env: 'GUARDCTL_MAX_BODY', configKey: 'max_body', description: 'largest request body (413 beyond)', default: '1m', parse: bytes },
  { key: 'requestTimeoutMs', flag: '--request-timeout <dur>', env: 'GUARDCTL_REQUEST_TIMEOUT', configKey: 'request_timeout', description: 'per-request time limit (504 beyond)', default: '60s', parse: ms },
  { key: 'drainTimeoutMs', flag: '--drain-timeout <dur>', env: 'GUARDCTL_DRAIN_TIMEOUT', configKey: 'drain_timeout', description: 'on SIGTERM/SIGINT, how long in-flight requests may finish', default: '30s', parse: ms },
  { key: 'basePath', flag: '--base-path <path>', env: 'GUARDCTL_BASE_PATH', configKey: 'base_path', description: 'serve under a sub-path, e.g. /guard (also the signed PATH prefix)', default: '', parse: basePath },
  { key: 'tlsCert', flag: '--tls-cert <file>', env: 'GUARDCTL_TLS_CERT', configKey: 'tls_cert', description: 'serve HTTPS with this certificate chain (reloaded on SIGHUP and change)', default: undefined, parse: text },
  { key: 'tlsKey', flag: '--tls-key <file>', env: 'GUARDCTL_TLS_KEY', configKey: 'tls_key', description: 'the private key for --tls-cert', default: undefined, parse: text },
  { key: 'insecureNoAuth', flag: '--insecure-no-auth', env: 'GUARDCTL_INSECURE_NO_AUTH', configKey: 'insecure_no_auth', description: 'no signatures (local experiments only; binds to loopback)', default: false, parse: (t, w) => parseBool(t, w), boolean: true },
  { key: 'allowPartial', flag: '--allow-partial', env: 'GUARDCTL_ALLOW_PARTIAL', configKey: 'allow_partial', description: 'when a model fails to load, serve the others (without it serve stops with the model\'s error, exit 1)', default: false, parse: (t, w) => parseBool(t, w), boolean: true },
  { key: 'state', flag: '--state <kind>', env: 'GUARDCTL_STATE', configKey: 'gate.state', description: 'gate state: sqlite (<home>/gate-state.db, survives restarts), memory (lost on restart), or redis://[user:pass@]host:port[/db] shared by several daemons (rediss:// for TLS; Valkey too)', default: 'sqlite', parse: stateKind },
  { key: 'keys', flag: '--keys <store>', env: 'GUARDCTL_KEYS', configKey: 'keys.store', description: 'key store: sqlite (<home>/keys.db) or postgres://USER:PASSWORD@HOST:PORT/DB shared by several daemons (run guardctl keys migrate first)', default: 'sqlite', parse: parseKeyStore },
  { key: 'keysStaleMs', flag: '--keys-stale <dur>', env: 'GUARDCTL_KEYS_STALE', configKey: 'keys.stale', description: 'with PostgreSQL keys: how long cached keys keep working while it is unreachable (0: refuse at once)', default: '60s', parse: (t, w) => (t === '0' ? 0 : ms(t, w)) },
  { key: 'auditFile', flag: '--audit-file <file>', env: 'GUARDCTL_AUDIT_FILE', configKey: 'audit_file', description: 'audit log (default <home>/audit/audit.jsonl)', default: undefined, parse: text },
];

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

/**
 * flags (commander values; undefined when not given) > env > config file `serve:` > defaults. A config key
 * written `gate.NAME` is read from the file's `gate:` section instead.
 */
export function resolveSettings(flags: Record<string, unknown>, env: NodeJS.ProcessEnv, fileSection: Record<string, unknown>, source: string, gateSection: Record<string, unknown> = {}, keysSection: Record<string, unknown> = {}): ServeSettings {
  const known = new Set(SETTINGS.map((s) => s.configKey));
  for (const key of Object.keys(fileSection)) {
    if (!known.has(key)) throw new GuardError('GUARD_E_CONFIG', `unknown setting serve.${key} in ${source}`, { hint: `known: ${[...known].join(', ')}` });
  }
  const out: Record<string, unknown> = {};
  for (const def of SETTINGS) {
    const flagValue = flags[def.key];
    if (flagValue !== undefined && flagValue !== false) {
      out[def.key] = def.boolean ? true : def.parse(String(flagValue), def.flag.split(' ')[0]!);
      continue;
    }
    const inGate = def.configKey.startsWith('gate.') || def.configKey.startsWith('keys.');
    const fromFile = inGate ? (def.configKey.startsWith('keys.') ? keysSection : gateSection)[def.configKey.slice(5)] : fileSection[def.configKey];
    const raw = pick<string>(env[def.env], fromFile === undefined || fromFile === null ? undefined : String(fromFile));
    const where = env[def.env] !== undefined && env[def.env] !== '' ? def.env : `${inGate ? '' : 'serve.'}${def.configKey} in ${source}`;
    if (raw !== undefined) out[def.key] = def.parse(raw, where);
    else if (def.default !== undefined) out[def.key] = typeof def.default === 'boolean' ? def.default : def.parse(def.default, def.flag);
  }
  const s = out as unknown as ServeSettings;
  if (Boolean(s.tlsCert) !== Boolean(s.tlsKey)) throw usageError('--tls-cert and --tls-key go together', 'give both, or neither for plain HTTP (behind nginx)');
  return s;
}
