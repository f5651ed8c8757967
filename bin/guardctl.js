#!/usr/bin/env node
// Launcher: the compiled CLI from dist/ (built by `npm ci` through the prepare script), or the TypeScript
// sources through tsx when dist/ is missing or GUARDCTL_FROM_SRC=1 (development, tests).
import { existsSync } from 'node:fs';

const dist = new URL('../dist/cli.js', import.meta.url);
let cli;
if (process.env.GUARDCTL_FROM_SRC !== '1' && existsSync(dist)) {
  cli = await import(dist.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(new URL('../src/cli.ts', import.meta.url).href);
}
await cli.runCli();
