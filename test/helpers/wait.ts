/** How long a test waits for something before calling it a hang: far beyond what a busy machine needs. */
export const HANG_BOUND_MS = 60_000;

/**
 * An engine's maxWaitMs where a test needs a batch of all the prompts it sends at once: with maxBatch equal to
 * their number the batch forms when the last arrives; this only bounds a lone request (a warm-up), which waits
 * it out, so it is far above the milliseconds that sending takes but not a whole hang bound.
 */
export const BATCH_FILL_MS = 2_000;

/**
 * Resolves once `condition` holds (polled every `intervalMs`); rejects naming `what` only past `boundMs`, a bound
 * that a hang reaches and a slow machine does not. Tests poll with this instead of counting a few short sleeps.
 */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string | (() => string), boundMs = HANG_BOUND_MS, intervalMs = 10): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up after ${boundMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
