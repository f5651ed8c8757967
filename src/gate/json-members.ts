/**
 * Version 1 signs a JSON body's top-level scalar members with numbers "as their JSON text" (so 1.0 stays "1.0").
 * JSON.parse loses that text, so after JSON.parse has validated the body this scanner walks the top level once
 * and slices the raw text of every number. Strings and booleans come from the parsed value.
 */
export type ScalarMember = [name: string, value: string];

/** Top-level members of a JSON object whose values are strings, numbers or booleans, in document order. */
export function topLevelScalars(raw: string, parsed: Record<string, unknown>): ScalarMember[] {
  // The raw scan is only needed when some member is a number (most bodies hold only strings).
  let numbers: Map<string, string> | undefined;
  const out: ScalarMember[] = [];
  for (const name of Object.keys(parsed)) {
    const value = parsed[name];
    if (typeof value === 'string') out.push([name, value]);
    else if (typeof value === 'boolean') out.push([name, value ? 'true' : 'false']);
    else if (typeof value === 'number') out.push([name, (numbers ??= rawNumberTexts(raw)).get(name) ?? String(value)]);
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
  // Character codes rather than one-character strings and regexps: this runs on every v1 request with a number.
  while (i < raw.length) {
    const c = raw.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(raw, i);
      if (depth === 1) {
        if (expectValue) expectValue = false;
        else {
          // The body was valid JSON, so a name without a backslash is its text between the quotes.
          const text = raw.slice(i + 1, end - 1);
          pendingName = text.includes('\\') ? JSON.parse(raw.slice(i, end)) as string : text;
        }
      }
      i = end;
      continue;
    }
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
      if (depth === 2) expectValue = false;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth--;
    else if (depth === 1 && c === COLON) expectValue = true;
    else if (depth === 1 && expectValue && (c === MINUS || isDigit(c))) {
      let end = i + 1;
      while (end < raw.length && isNumberChar(raw.charCodeAt(end))) end++;
      if (pendingName !== undefined) found.set(pendingName, raw.slice(i, end));
      expectValue = false;
      i = end;
      continue;
    } else if (depth === 1 && expectValue && (c === LOWER_T || c === LOWER_F || c === LOWER_N)) expectValue = false;
    i++;
  }
  return found;
}

const QUOTE = 0x22; // "
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COLON = 0x3a;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const LOWER_T = 0x74;
const LOWER_F = 0x66;
const LOWER_N = 0x6e;

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** [0-9eE+.-] */
function isNumberChar(c: number): boolean {
  return isDigit(c) || c === 0x65 || c === 0x45 || c === PLUS || c === DOT || c === MINUS;
}

/** Index just past the closing quote of the JSON string starting at `start`. */
function stringEnd(raw: string, start: number): number {
  let i = start + 1;
  while (i < raw.length) {
    const c = raw.charCodeAt(i);
    if (c === BACKSLASH) i += 2;
    else if (c === QUOTE) return i + 1;
    else i++;
  }
  return i;
}
