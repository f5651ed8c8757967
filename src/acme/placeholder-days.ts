// Apart from placeholder.ts (node-forge), so that `nginx install --help` can name it without loading forge.
/** Long enough for a slow first issuance, short enough that a forgotten one is noticed. */
export const PLACEHOLDER_DAYS = 7;
