/** package.json lists exactly what the code imports (scripts/check-deps.mjs), on this repository and on a made-up one. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers/cli.js';

const SCRIPT = new URL('../../scripts/check-deps.mjs', import.meta.url).pathname;

function check(root?: string): { status: number | null; problems: string[]; stdout: string } {
  const r = spawnSync(process.execPath, [SCRIPT, ...(root ? [root] : [])], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, problems: r.stderr.split('\n').filter((l) => l.startsWith('  - ')).map((l) => l.slice(4)) };
}

test('this repository: every dependency is imported by src/ or bin/, every import is declared', () => {
  const r = check();
  assert.deepEqual(r.problems, []);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /package\.json matches the imports/);
});

test('a made-up repository: undeclared imports, unused dependencies, misplaced devDependencies are each named', (t) => {
  const root = tempDir(t);
  // Dynamic imports are spelled IMPORT( here, so that this file's own check does not take them for its imports.
  const write = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    fs.writeFileSync(path.join(root, file), text.replaceAll('IMPORT(', 'import('));
  };
  write('package.json', JSON.stringify({
    name: 'demo',
    scripts: { test: 'node --import tsx scripts/run.mjs', typecheck: 'tsc -p .' },
    dependencies: { used: '1', 'used-sub': '1', '@scope/used': '1', unused: '1', 'test-only': '1' },
    devDependencies: { tsx: '1', typescript: '1', '@types/node': '1', '@types/used': '1', '@types/gone': '1', 'type-lib': '1', 'dev-lib': '1', 'read-lib': '1', '@scope/read': '1', ghost: '1', 'runtime-dev': '1' },
  }));
  // typescript is run by its command name (tsc), found through its package.json "bin".
  write('node_modules/typescript/package.json', JSON.stringify({ name: 'typescript', bin: { tsc: './bin/tsc' } }));
  write('src/index.ts', [
    "import fs from 'node:fs';",
    "import path from 'path';",
    "import { a } from 'used';",
    "import 'used-sub/register.js';",
    "export { b } from '@scope/used/deep/file.js';",
    "import type { T } from 'type-lib';",
    "import { own } from 'demo/client';",
    "import { x } from 'undeclared';",
    "import { y } from 'runtime-dev';",
    "const z = await IMPORT('@scope/missing/sub');",
    "import { w } from './local.js';",
  ].join('\n'));
  write('bin/cli.js', "const dev = await IMPORT('dev-lib'); // check-deps: dev-only\n");
  write('test/a.test.ts', "import { q } from 'test-only';\nimport { r } from 'dev-lib';\nimport { s } from 'nowhere';\n");
  write('scripts/run.mjs', "const tok = 'node_modules/read-lib/x.json';\nconst other = path.join(repo, 'node_modules/@scope/read');\n");
  const r = check(root);
  assert.equal(r.status, 1);
  assert.deepEqual(r.problems.sort(), [
    'dependency "test-only" is imported only by tests, benchmarks or type imports: move it to "devDependencies"',
    'dependency "unused" is declared but nothing in src/, bin/ imports it: remove it or use it',
    'devDependency "@types/gone" is declared but no file imports it and no npm script runs it: remove it',
    'devDependency "ghost" is declared but no file imports it and no npm script runs it: remove it',
    'src/index.ts imports "@scope/missing", which package.json does not declare',
    'src/index.ts imports "runtime-dev", a devDependency: code that runs for users needs it in "dependencies"',
    'src/index.ts imports "undeclared", which package.json does not declare',
    'test/a.test.ts imports "nowhere", which package.json does not declare',
  ]);
});
