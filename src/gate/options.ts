import { GuardError } from '../core/errors.js';
import { parseCidrList, type CidrList } from './ip.js';
import type { AuthFailurePolicy } from './state.js';

export interface GateOptions {
  /** Accepted clock difference between client and server, seconds. */
  windowSec: number;
  /** Peers whose X-Forwarded-For is believed (CIDRs); none by default. */
  trustedProxies?: CidrList;
  /** Refuse version 1 signatures. */
  requireV2: boolean;
  /** Put the server's string_to_sign into bad_signature answers (it holds no secret). */
  debug: boolean;
  nonceCapacity: number;
  authFailures: AuthFailurePolicy;
}

export const DEFAULT_GATE_OPTIONS: GateOptions = {
  windowSec: 300,
  requireV2: false,
  debug: false,
  nonceCapacity: 1_000_000,
  authFailures: { limit: 20, windowSec: 60, blockSec: 300 },
};

/** Reads the config file's `gate:` section (snake_case keys) over the defaults. */
export function gateOptionsFromConfig(section: Record<string, unknown>, source: string): GateOptions {
  const where = (key: string) => `gate.${key} in ${source}`;
  const num = (key: string, fallback: number, min = 1): number => {
    const v = section[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      throw new GuardError('GUARD_E_CONFIG', `${where(key)} must be a whole number >= ${min}`, { hint: `got ${JSON.stringify(v)}` });
    }
    return v;
  };
  const bool = (key: string, fallback: boolean): boolean => {
    const v = section[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') throw new GuardError('GUARD_E_CONFIG', `${where(key)} must be true or false`, { hint: `got ${JSON.stringify(v)}` });
    return v;
  };
  // `state` is read with the serve settings (--state, GUARDCTL_STATE) in src/daemon/settings.ts.
  const known = ['window', 'trusted_proxies', 'require_v2', 'debug', 'nonce_capacity', 'auth_failure_limit', 'auth_failure_window', 'auth_failure_block', 'state'];
  for (const key of Object.keys(section)) {
    if (!known.includes(key)) throw new GuardError('GUARD_E_CONFIG', `unknown setting ${where(key)}`, { hint: `known gate settings: ${known.join(', ')}` });
  }
  let trustedProxies: CidrList | undefined;
  if (section.trusted_proxies !== undefined) {
    const list = section.trusted_proxies;
    if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) {
      throw new GuardError('GUARD_E_CONFIG', `${where('trusted_proxies')} must be a list of CIDRs`, { hint: 'for example ["127.0.0.1/32", "::1/128"]' });
    }
    trustedProxies = parseTrusted(list as string[], where('trusted_proxies'));
  }
  const d = DEFAULT_GATE_OPTIONS;
  return {
    windowSec: num('window', d.windowSec),
    trustedProxies,
    requireV2: bool('require_v2', d.requireV2),
    debug: bool('debug', d.debug),
    nonceCapacity: num('nonce_capacity', d.nonceCapacity),
    authFailures: {
      limit: num('auth_failure_limit', d.authFailures.limit),
      windowSec: num('auth_failure_window', d.authFailures.windowSec),
      blockSec: num('auth_failure_block', d.authFailures.blockSec),
    },
  };
}

export function parseTrusted(list: string[], where: string): CidrList {
  try {
    return parseCidrList(list);
  } catch (err) {
    throw new GuardError('GUARD_E_CONFIG', `${where}: ${(err as Error).message}`, { hint: 'list the proxies as CIDRs, e.g. 127.0.0.1/32' });
  }
}
