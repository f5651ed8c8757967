import fs from 'node:fs';
import { dnsError } from './errors.js';
import type { ProviderEnvVar, ProviderMeta } from './types.js';

/**
 * Reads a provider's variables as its metadata declares them: the primary name, then the aliases (acme.sh's and
 * lego's names, so an operator's existing environment works unchanged), then, for secrets, NAME_FILE (a path whose
 * trimmed content is the value: Docker/systemd credentials). Missing required variables are reported together,
 * with every accepted spelling, because "set Ali_Key" alone misleads someone who exported ALICLOUD_ACCESS_KEY
 * with a typo.
 */
export interface ProviderEnv {
  /** The value of a variable by its primary name (whichever spelling supplied it); undefined when unset. */
  get(name: string): string | undefined;
  /** Like get() for a variable the metadata marks required: create() already checked it is there. */
  need(name: string): string;
  /** Every secret value that was read, for scrub(). */
  secrets: string[];
}

/** Every name that can supply this variable, in the order they are tried. */
export function acceptedNames(v: ProviderEnvVar): string[] {
  const direct = [v.name, ...(v.aliases ?? [])];
  return v.secret ? [...direct, ...direct.map((n) => `${n}_FILE`)] : direct;
}

function describeNames(v: ProviderEnvVar): string {
  const [first, ...rest] = acceptedNames(v);
  return rest.length ? `${first} (or ${rest.join(', ')})` : `${first}`;
}

function fromFile(meta: ProviderMeta, varName: string, file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw dnsError(meta.name, `cannot read ${varName} (${file}): ${code}`, {
      hint: `point ${varName} at a readable file that holds only the secret`,
      details: { variable: varName },
    });
  }
  const value = text.trim();
  if (!value) throw dnsError(meta.name, `${varName} (${file}) is empty`, { hint: `write the secret into ${file}`, details: { variable: varName } });
  return value;
}

function lookup(meta: ProviderMeta, v: ProviderEnvVar, env: NodeJS.ProcessEnv, override: string | undefined): string | undefined {
  if (override !== undefined && override.trim() !== '') return override.trim();
  const direct = [v.name, ...(v.aliases ?? [])];
  for (const n of direct) {
    const value = env[n]?.trim();
    if (value) return value;
  }
  if (!v.secret) return undefined;
  for (const n of direct) {
    const file = env[`${n}_FILE`]?.trim();
    if (file) return fromFile(meta, `${n}_FILE`, file);
  }
  return undefined;
}

/**
 * Resolves every variable of meta.env from env. `overrides` (by primary name) come from command-line options and
 * win over the environment (the exec provider's --dns-exec over GUARDCTL_DNS_EXEC).
 */
export function readProviderEnv(meta: ProviderMeta, env: NodeJS.ProcessEnv, overrides: Record<string, string | undefined> = {}): ProviderEnv {
  const values = new Map<string, string>();
  const secrets: string[] = [];
  const missing: ProviderEnvVar[] = [];
  for (const v of meta.env) {
    const value = lookup(meta, v, env, overrides[v.name]);
    if (value === undefined) {
      if (v.required) missing.push(v);
      continue;
    }
    values.set(v.name, value);
    if (v.secret) secrets.push(value);
  }
  if (missing.length) {
    const what = missing.map(describeNames).join(' and ');
    throw dnsError(meta.name, `missing ${missing.length === 1 ? 'setting' : 'settings'}: set ${what}`, {
      hint: `export ${missing.length === 1 ? 'it' : 'them'} where guardctl runs (for renewals: the systemd unit's EnvironmentFile); a secret can also be read from the file named by NAME_FILE`,
      details: { missing: missing.flatMap(acceptedNames) },
    });
  }
  const get = (name: string) => values.get(name);
  const need = (name: string) => {
    const value = values.get(name);
    // A bug, not a user error: need() is for variables the metadata marks required.
    if (value === undefined) throw new Error(`${meta.name}: ${name} is not a required variable`);
    return value;
  };
  return { get, need, secrets };
}
