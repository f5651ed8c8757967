import { GuardError } from '../core/errors.js';
import { type KeyRow, verifyCheck } from './schema.js';
import { count } from '../core/plural.js';

/**
 * `guardctl keys export` / `import`: a whole key store as JSON lines. The first line is a header (format, version,
 * the store's master-key check value), then one line per key (the row exactly as stored: secrets stay sealed under
 * the master key, bound to their key id) and one per history event, oldest first. Nothing is ever unsealed, so the
 * file is as sensitive as the store itself and opens only with the same master key.
 */
export const TRANSFER_FORMAT = 'guardctl-keys';
export const TRANSFER_VERSION = 1;

export interface EventRow {
  at: number;
  key_id: string;
  action: string;
  detail: string | null;
}

export interface StoreDump {
  /** The source store's check value: import verifies its own master key opens it before writing anything. */
  check: string;
  keys: KeyRow[];
  events: EventRow[];
}

export interface ImportResult {
  keys: number;
  events: number;
  /** Keys left out because the target already had their id (only with merge). */
  skipped: string[];
}

const KEY_FIELDS = ['id', 'name', 'tier', 'created_at', 'expires_at', 'revoked_at', 'last_used_at', 'allow_ips', 'overrides', 'secret', 'previous_secret', 'previous_valid_until', 'allow_bearer'] as const;

export function dumpToLines(dump: StoreDump): string {
  const lines = [JSON.stringify({ format: TRANSFER_FORMAT, version: TRANSFER_VERSION, check: dump.check, keys: dump.keys.length, events: dump.events.length })];
  for (const k of dump.keys) lines.push(JSON.stringify({ type: 'key', ...Object.fromEntries(KEY_FIELDS.map((f) => [f, k[f]])) }));
  for (const e of dump.events) lines.push(JSON.stringify({ type: 'event', at: e.at, key_id: e.key_id, action: e.action, detail: e.detail }));
  return `${lines.join('\n')}\n`;
}

/** Parses an export, checking its shape line by line; errors name the line, never a secret. */
export function linesToDump(text: string, source: string): StoreDump {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const bad = (n: number, why: string) => new GuardError('GUARD_E_USAGE', `${source} line ${n}: ${why}`, { hint: 'give a file written by guardctl keys export' });
  const parse = (line: string, n: number): Record<string, unknown> => {
    try {
      const v = JSON.parse(line) as unknown;
      if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch { /* reported below */ }
    throw bad(n, 'not a JSON object');
  };
  if (lines.length === 0) throw bad(1, 'the file is empty');
  const head = parse(lines[0]!, 1);
  if (head.format !== TRANSFER_FORMAT) throw bad(1, `not a guardctl key export (format ${JSON.stringify(head.format)})`);
  if (head.version !== TRANSFER_VERSION) {
    throw new GuardError('GUARD_E_USAGE', `${source} is export version ${String(head.version)}; this guardctl reads version ${TRANSFER_VERSION}`, { hint: 'import it with the guardctl that wrote it, or a newer one' });
  }
  if (typeof head.check !== 'string') throw bad(1, 'the header has no check value');
  const dump: StoreDump = { check: head.check, keys: [], events: [] };
  const int = (v: unknown) => v === null || (typeof v === 'number' && Number.isSafeInteger(v));
  lines.slice(1).forEach((line, i) => {
    const n = i + 2;
    const o = parse(line, n);
    if (o.type === 'key') {
      for (const f of ['id', 'name', 'tier', 'allow_ips', 'overrides', 'secret'] as const) if (typeof o[f] !== 'string') throw bad(n, `key field ${f} must be a string`);
      for (const f of ['created_at'] as const) if (typeof o[f] !== 'number') throw bad(n, `key field ${f} must be a number`);
      for (const f of ['expires_at', 'revoked_at', 'last_used_at', 'previous_valid_until'] as const) if (!int(o[f])) throw bad(n, `key field ${f} must be a number or null`);
      if (o.previous_secret !== null && typeof o.previous_secret !== 'string') throw bad(n, 'key field previous_secret must be a string or null');
      // Absent in exports written before bearer credentials existed: such keys never had them.
      if (o.allow_bearer === undefined) o.allow_bearer = 0;
      if (o.allow_bearer !== 0 && o.allow_bearer !== 1) throw bad(n, 'key field allow_bearer must be 0 or 1');
      dump.keys.push(Object.fromEntries(KEY_FIELDS.map((f) => [f, o[f]])) as unknown as KeyRow);
    } else if (o.type === 'event') {
      if (typeof o.at !== 'number' || typeof o.key_id !== 'string' || typeof o.action !== 'string' || (o.detail !== null && typeof o.detail !== 'string')) throw bad(n, 'malformed event');
      dump.events.push({ at: o.at, key_id: o.key_id, action: o.action, detail: o.detail as string | null });
    } else {
      throw bad(n, `unknown line type ${JSON.stringify(o.type)}`);
    }
  });
  if (head.keys !== dump.keys.length || head.events !== dump.events.length) {
    throw bad(1, `the header announces ${count(Number(head.keys), 'key')} and ${count(Number(head.events), 'event')} but the file holds ${dump.keys.length} and ${dump.events.length}: it is truncated`);
  }
  return dump;
}

/** The keys (and their events) an import writes: all of them into an empty store, only new ids with merge. */
export function selectImport(dump: StoreDump, existing: ReadonlySet<string>, merge: boolean, target: string): { keys: KeyRow[]; events: EventRow[]; skipped: string[] } {
  if (existing.size > 0 && !merge) {
    throw new GuardError('GUARD_E_KEYSTORE', `${target} already holds ${existing.size} key(s); import writes only into an empty store`, {
      hint: 'import into a new store, or add --merge to add the keys whose ids it does not hold yet (keys it holds stay as they are)',
    });
  }
  const keys = dump.keys.filter((k) => !existing.has(k.id));
  const kept = new Set(keys.map((k) => k.id));
  return { keys, events: dump.events.filter((e) => kept.has(e.key_id)), skipped: dump.keys.filter((k) => existing.has(k.id)).map((k) => k.id) };
}

/** Sealed secrets open only under the master key that sealed them: an export from another key is refused whole. */
export function verifyExportKey(masterKey: Buffer, dump: StoreDump): void {
  verifyCheck(masterKey, dump.check, 'the exported key store (its secrets were sealed under another master key)', 'export again from the store this file came from');
}
