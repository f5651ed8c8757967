#!/usr/bin/env node
// Launcher: the compiled CLI from dist/ (built by `npm ci` through the prepare script), or the TypeScript
// sources through tsx when dist/ is missing or GUARDCTL_FROM_SRC=1 (development, tests).
import { existsSync } from 'node:fs';

const dist = new URL('../dist/cli.js', import.meta.url);
let cli;
if (process.env.GUARDCTL_FROM_SRC !== '1' && existsSync(dist)) {
  cli = await import(dist.href);
} else {
  // tsx is a devDependency: only a checkout (no build, or GUARDCTL_FROM_SRC=1) gets here.
  const tsx = await import('tsx/esm/api').catch((err) => { // check-deps: dev-only
    if (err?.code === 'ERR_MODULE_NOT_FOUND') return undefined;
    throw err;
  });
  if (tsx) {
    tsx.register();
    cli = await import(new URL('../src/cli.ts', import.meta.url).href);
  } else {
    process.stderr.write('error: guardctl has no build in dist/ and no tsx to run its sources\n  hint: run npm run build (or npm ci, which builds), then try again\n');
    process.exitCode = 1;
  }
}
await cli?.runCli();
