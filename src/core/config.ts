import fs from 'node:fs';
import { createRequire } from 'node:module';
import { GuardError } from './errors.js';

/**
 * The config file, as parsed YAML. Each section is validated by the module that owns it (tiers by keys/tiers,
 * the gate's by gate/options), so this module only checks the file's overall shape. Precedence is applied by
 * the callers: flag > env > this file > built-in default (see pick()).
 */
export interface GuardConfig {
  log?: string;
  gate?: Record<string, unknown>;
  tiers?: Record<string, unknown>;
  models?: unknown;
  serve?: Record<string, unknown>;
  [section: string]: unknown;
}

export function loadConfigFile(file: string, { required = false } = {}): GuardConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !required) return {};
    throw new GuardError('GUARD_E_CONFIG', `cannot read config file ${file}: ${(err as Error).message}`, {
      hint: code === 'ENOENT' ? 'check the path given to --config / GUARDCTL_CONFIG' : 'check the file permissions',
      cause: err,
    });
  }
  // yaml is required only when a config file exists: most runs have none, and it costs start-up time.
  const { parse: parseYaml, YAMLParseError } = createRequire(import.meta.url)('yaml') as typeof import('yaml');
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}` : '';
    throw new GuardError('GUARD_E_CONFIG', `config file ${file} is not valid YAML${where}: ${(err as Error).message.split('\n')[0]}`, {
      hint: 'fix the YAML syntax (indentation with spaces, "key: value" pairs)',
      cause: err,
    });
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new GuardError('GUARD_E_CONFIG', `config file ${file} must hold a mapping of sections, not ${Array.isArray(data) ? 'a list' : typeof data}`, {
      hint: 'start the file with section names such as "tiers:" or "gate:"',
    });
  }
  return data as GuardConfig;
}

/** flag > env > file > default, skipping undefined and empty-string values. */
export function pick<T>(...candidates: Array<T | undefined | ''>): T | undefined {
  for (const value of candidates) if (value !== undefined && value !== '') return value as T;
  return undefined;
}

/** Reads a nested config section as a plain object, or fails naming the section. */
export function section(config: GuardConfig, name: string, file: string): Record<string, unknown> {
  const value = config[name];
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new GuardError('GUARD_E_CONFIG', `config section "${name}" in ${file} must be a mapping`, {
      hint: `write it as "${name}:" followed by indented "key: value" lines`,
    });
  }
  return value as Record<string, unknown>;
}
