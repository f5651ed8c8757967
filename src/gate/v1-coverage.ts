import type { Pair } from './canonical.js';

/**
 * What a version 1 signature does not cover. Version 1 signs the query and a JSON object body's top-level
 * strings, numbers and booleans, raw and joined with '&' (../shared/signing.md), so anything else in the body
 * (arrays, objects, null, a body that is not a JSON object) can be swapped under a valid signature, and a value
 * holding `&NAME=` reads like a second parameter NAME. The gate refuses both under version 1 (pointing to
 * version 2); clients use the same rule to refuse to sign what the server would refuse.
 */
export interface V1Problem {
  code: 'v1_unsigned_member' | 'v1_ambiguous_param';
  /** Names the member or parameter, never its value (user text). */
  detail: string;
}

export interface V1Body {
  /** The parsed JSON body, or undefined when the body is not JSON. */
  json: unknown;
  /** Whether a body with bytes was sent at all. */
  present: boolean;
}

/**
 * The first thing a version 1 signature leaves open, or undefined when it covers everything the server acts on.
 * `accepts` is the set of parameter and member names the route reads; without it, any name made of
 * non-space characters counts (the cautious reading for routes that declare none).
 */
export function v1Problem(query: Pair[], body: V1Body, accepts?: ReadonlySet<string>): V1Problem | undefined {
  if (body.present) {
    const json = body.json;
    if (json === undefined) return { code: 'v1_unsigned_member', detail: 'a body that is not JSON is not signed by version 1' };
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      return { code: 'v1_unsigned_member', detail: 'version 1 signs only a JSON object body' };
    }
    for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
      const type = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : undefined;
      if (type) return { code: 'v1_unsigned_member', detail: `member "${clip(name)}" is ${type}, which version 1 does not sign` };
      const problem = ambiguity(name, typeof value === 'string' ? value : '', 'member', accepts);
      if (problem) return problem;
    }
  }
  for (const [name, value] of query) {
    const problem = ambiguity(name, value, 'parameter', accepts);
    if (problem) return problem;
  }
  return undefined;
}

function ambiguity(name: string, value: string, what: string, accepts: ReadonlySet<string> | undefined): V1Problem | undefined {
  if (name.includes('&') || name.includes('=')) {
    return { code: 'v1_ambiguous_param', detail: `a ${what} name holds '&' or '=', which version 1 cannot tell from a separator` };
  }
  // One pass: each '&' starts a candidate name that ends at the next '=' (a hit) or '&' (the next candidate).
  let amp = value.indexOf('&');
  while (amp !== -1) {
    let end = amp + 1;
    while (end < value.length && value[end] !== '&' && value[end] !== '=') end++;
    if (end < value.length && value[end] === '=' && end > amp + 1) {
      const inner = value.slice(amp + 1, end);
      if (accepts ? accepts.has(inner) : !/\s/.test(inner)) {
        return { code: 'v1_ambiguous_param', detail: `${what} "${clip(name)}" holds "&${clip(inner)}=", which version 1 signs like a separate parameter` };
      }
    }
    amp = value.indexOf('&', end);
  }
  return undefined;
}

function clip(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}
