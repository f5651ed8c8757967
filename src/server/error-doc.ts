/** docs/errors.md holds the catalogue's table between these markers; scripts/errors-doc.mjs rewrites it. */
export const BEGIN = '<!-- http-errors: generated from src/server/error-catalogue.ts by scripts/errors-doc.mjs -->';
export const END = '<!-- http-errors: end -->';

/** The generated table in a page, or null when the markers are missing. */
export function generatedPart(page: string): string | null {
  const a = page.indexOf(BEGIN);
  const b = page.indexOf(END);
  return a === -1 || b < a ? null : page.slice(a + BEGIN.length + 1, b);
}

export function replaceGenerated(page: string, table: string): string {
  if (generatedPart(page) === null) throw new Error(`docs/errors.md lacks the markers ${BEGIN} ... ${END}`);
  return page.slice(0, page.indexOf(BEGIN) + BEGIN.length + 1) + table + page.slice(page.indexOf(END));
}
