import fs from 'node:fs';

/**
 * The calling thread's time on a CPU in ms (Linux's /proc/thread-self/schedstat), or NaN where that is not
 * available. Unlike wall-clock or event-loop-busy time it leaves out the time the thread waited for a core,
 * which on a shared 2-core machine can be larger than the work itself.
 */
export function threadCpuMs(): number {
  try {
    return Number(fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return NaN;
  }
}
