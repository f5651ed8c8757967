/**
 * What `nginx render` prints without --out: the site file and each snippet under a "# ---- <what> ----" line, so
 * one stream holds the whole site. `nginx check` reads it back (parseBundle), so a render for another host can be
 * checked here before anything is written.
 */
const SITE = /^# ---- site (\S+) ----$/;
const FILE = /^# ---- (\/\S+) ----$/;

export interface Bundle {
  name: string;
  site: string;
  /** Absolute path -> content, as the site's includes name them. */
  snippets: Record<string, string>;
}

export function formatBundle(bundle: Bundle): string {
  return [
    `# ---- site ${bundle.name} ----\n${bundle.site}`,
    ...Object.entries(bundle.snippets).map(([file, content]) => `# ---- ${file} ----\n${content}`),
  ].join('\n');
}

/** The bundle in `text`, or undefined when it is a plain site file (its first line is no bundle marker). */
export function parseBundle(text: string): Bundle | undefined {
  const lines = text.split('\n');
  const head = SITE.exec(lines[0] ?? '');
  if (!head) return undefined;
  const parts: Array<{ file?: string; lines: string[] }> = [{ lines: [] }];
  for (const line of lines.slice(1)) {
    const m = FILE.exec(line);
    if (m) parts.push({ file: m[1]!, lines: [] });
    else parts[parts.length - 1]!.lines.push(line);
  }
  // Each part's lines joined again give its content back: the "\n" that formatBundle joins with ends its last line.
  const snippets = Object.fromEntries(parts.slice(1).map((p) => [p.file!, p.lines.join('\n')]));
  return { name: head[1]!, site: parts[0]!.lines.join('\n'), snippets };
}
