/** "1 key", "2 keys": a count with its noun, so that no message says "1 keys". */
export function count(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}
