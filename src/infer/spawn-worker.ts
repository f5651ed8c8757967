/**
 * Starts a worker thread on a module next to this file: the compiled .js, or the .ts through tsx when running
 * from src/ (tests, benches, GUARDCTL_FROM_SRC).
 */
import { Worker } from 'node:worker_threads';

/** `name` without extension, e.g. 'worker' or 'tokenize-worker'. */
export function spawnWorker(name: string, data: unknown): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, here), { workerData: data });
  return tsWorker(new URL(`./${name}.ts`, here), data);
}

/** A worker thread on a TypeScript module, through tsx (tests and benches run from the sources). */
export function tsWorker(entry: URL, data: unknown): Worker {
  // Hooks registered with tsx's API on the main thread (bin/guardctl.js) do not reach workers: register again.
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(code, { eval: true, workerData: data });
}
