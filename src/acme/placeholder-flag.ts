// Apart from placeholder.ts (node-forge), so that `nginx install --help`, `status` and `cert list` can ask about
// placeholders without loading forge.
import type { LineageMeta } from './types.js';

/** Long enough for a slow first issuance, short enough that a forgotten one is noticed. */
export const PLACEHOLDER_DAYS = 7;

/** True when the lineage's current certificate is a placeholder (the `status` and `cert list` question). */
export function isPlaceholder(meta: Pick<LineageMeta, 'placeholder'>): boolean {
  return meta.placeholder === true;
}
