/**
 * How many characters at the end of `text` could be the start of one of `patterns` (a proper prefix of it): the
 * part of a streamed answer to hold back until the next piece says whether a stop sequence or a closing tag
 * begins there. 0 when no tail could.
 */
export function partialSuffix(text: string, patterns: readonly string[]): number {
  const longest = Math.max(0, ...patterns.map((p) => p.length));
  for (let n = Math.min(longest - 1, text.length); n > 0; n--) {
    const tail = text.slice(-n);
    if (patterns.some((p) => p.startsWith(tail))) return n;
  }
  return 0;
}
