/** Unified diffs for `nginx install --dry-run`: `diff -u` when it is installed, else a small LCS diff. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import type { ChalkInstance } from '../core/colour.js';

/** A unified diff of two texts ('' when equal); undefined `before` means the file does not exist yet. */
export async function unifiedDiff(file: string, before: string | undefined, after: string | undefined): Promise<string> {
  if (before === after) return '';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'guardctl-diff-'));
  try {
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    fs.writeFileSync(a, before ?? '');
    fs.writeFileSync(b, after ?? '');
    const labels = ['--label', before === undefined ? '/dev/null' : file, '--label', after === undefined ? '/dev/null' : file];
    const r = await execa('diff', ['-u', ...labels, a, b], { reject: false, timeout: 10_000, stdin: 'ignore' });
    if (r.exitCode === 1 && typeof r.stdout === 'string') return r.stdout.endsWith('\n') ? r.stdout : `${r.stdout}\n`;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return smallDiff(file, before, after);
}

/** Colours a unified diff for a terminal: additions green, removals red, hunk headers cyan. */
export function colourDiff(diff: string, paint: ChalkInstance): string {
  return diff.split('\n').map((line) => {
    if (line.startsWith('+++') || line.startsWith('---')) return paint.bold(line);
    if (line.startsWith('+')) return paint.green(line);
    if (line.startsWith('-')) return paint.red(line);
    return line.startsWith('@@') ? paint.cyan(line) : line;
  }).join('\n');
}

function lines(text: string | undefined): string[] {
  if (!text) return [];
  return (text.endsWith('\n') ? text.slice(0, -1) : text).split('\n');
}

/** A unified diff in one hunk with 3 lines of context trimmed at both ends (LCS; fine for config files). */
export function smallDiff(file: string, before: string | undefined, after: string | undefined): string {
  const a = lines(before);
  const b = lines(after);
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  }
  const ops: Array<[' ' | '-' | '+', string]> = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      ops.push([' ', a[i++]!]);
      j++;
    } else if (j < m && (i >= n || lcs[i]![j + 1]! >= lcs[i + 1]![j]!)) ops.push(['+', b[j++]!]);
    else ops.push(['-', a[i++]!]);
  }
  const first = ops.findIndex(([op]) => op !== ' ');
  let last = ops.length - 1;
  while (last >= 0 && ops[last]![0] === ' ') last--;
  const start = Math.max(0, first - 3);
  const end = Math.min(ops.length - 1, last + 3);
  const hunk = ops.slice(start, end + 1);
  const oldStart = ops.slice(0, start).filter(([op]) => op !== '+').length;
  const newStart = ops.slice(0, start).filter(([op]) => op !== '-').length;
  const oldCount = hunk.filter(([op]) => op !== '+').length;
  const newCount = hunk.filter(([op]) => op !== '-').length;
  const range = (s: number, c: number) => `${c === 0 ? s : s + 1},${c}`;
  return [
    `--- ${before === undefined ? '/dev/null' : file}`,
    `+++ ${after === undefined ? '/dev/null' : file}`,
    `@@ -${range(oldStart, oldCount)} +${range(newStart, newCount)} @@`,
    ...hunk.map(([op, text]) => `${op}${text}`),
    '',
  ].join('\n');
}
