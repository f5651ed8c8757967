/**
 * A nesting bound for JSON bodies, checked by a byte scan before JSON.parse: a body of a million '[' costs
 * JSON.parse (and every schema walk after it) up to a second of event loop, while this scan stops at the first
 * level too deep. Real bodies nest three levels at most (messages -> message -> content).
 */
export const MAX_JSON_DEPTH = 32;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Whether the JSON text opens more than `max` arrays or objects inside one another (strings skipped). */
export function jsonDeeperThan(text: Uint8Array, max: number): boolean {
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text[i]!;
    if (c === QUOTE) {
      i = stringEnd(text, i);
      if (i === -1) return false; // unterminated: JSON.parse names that problem
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/**
 * Index of the quote closing the string that opens at `start`, or -1. Jumps from quote to quote (texts are most
 * of a body's bytes); a quote preceded by an odd run of backslashes is escaped. UTF-8 continuation bytes are
 * >= 0x80, so they never look like a quote or a bracket.
 */
function stringEnd(text: Uint8Array, start: number): number {
  let j = start;
  for (;;) {
    j = text.indexOf(QUOTE, j + 1);
    if (j === -1) return -1;
    let k = j - 1;
    while (k > start && text[k] === BACKSLASH) k--;
    if ((j - 1 - k) % 2 === 0) return j;
  }
}
