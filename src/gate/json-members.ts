/**
 * Version 1 signs a JSON body's top-level scalar members with numbers "as their JSON text" (so 1.0 stays "1.0").
 * JSON.parse loses that text, so after JSON.parse has validated the body this scanner walks the top level once
 * and slices the raw text of every number. Strings and booleans come from the parsed value.
 */
export type ScalarMember = [name: string, value: string];

/** Top-level members of a JSON object whose values are strings, numbers or booleans, in document order. */
export function topLevelScalars(raw: string, parsed: Record<string, unknown>): ScalarMember[] {
  // The raw scan is only needed when some member is a number (most bodies hold only strings).
  const numbers = Object.values(parsed).some((v) => typeof v === 'number') ? rawNumberTexts(raw) : undefined;
  const out: ScalarMember[] = [];
  for (const [name, value] of Object.entries(parsed)) {
    if (typeof value === 'string') out.push([name, value]);
    else if (typeof value === 'boolean') out.push([name, value ? 'true' : 'false']);
    else if (typeof value === 'number') out.push([name, numbers?.get(name) ?? String(value)]);
  }
  return out;
}

/** name -> raw text of each top-level member whose value is a number (last one wins, as in JSON.parse). */
function rawNumberTexts(raw: string): Map<string, string> {
  const found = new Map<string, string>();
  let depth = 0;
  let i = 0;
  let pendingName: string | undefined;
  let expectValue = false;
  while (i < raw.length) {
    const c = raw[i]!;
    if (c === '"') {
      const end = stringEnd(raw, i);
      if (depth === 1) {
        if (expectValue) expectValue = false;
        else pendingName = JSON.parse(raw.slice(i, end)) as string;
      }
      i = end;
      continue;
    }
    if (c === '{' || c === '[') {
      depth++;
      if (depth === 2) expectValue = false;
    } else if (c === '}' || c === ']') depth--;
    else if (depth === 1 && c === ':') expectValue = true;
    else if (depth === 1 && expectValue && (c === '-' || (c >= '0' && c <= '9'))) {
      let end = i + 1;
      while (end < raw.length && /[0-9eE+.-]/.test(raw[end]!)) end++;
      if (pendingName !== undefined) found.set(pendingName, raw.slice(i, end));
      expectValue = false;
      i = end;
      continue;
    } else if (depth === 1 && expectValue && (c === 't' || c === 'f' || c === 'n')) expectValue = false;
    i++;
  }
  return found;
}

/** Index just past the closing quote of the JSON string starting at `start`. */
function stringEnd(raw: string, start: number): number {
  let i = start + 1;
  while (i < raw.length) {
    const c = raw[i];
    if (c === '\\') i += 2;
    else if (c === '"') return i + 1;
    else i++;
  }
  return i;
}
