/** Commander option parsers for flags that may be given more than once. */

/** A repeatable flag whose values may also be comma-separated: `--allow a,b --allow c` -> [a, b, c]. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];

/** A repeatable flag taken whole (its values may hold commas): `--model x --model y` -> [x, y]. */
export const repeat = (value: string, previous: string[] = []): string[] => [...previous, value];
