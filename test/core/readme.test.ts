import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';

const readme = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const quickStart = readme.slice(0, readme.indexOf('## Status'));
const gitignore = fs.readFileSync(new URL('../../.gitignore', import.meta.url), 'utf8');

test('the quick start keeps the secret out of the working tree and starts the daemon so that one signal stops it', () => {
  // Every redirect of a command's output goes to an absolute path (outside the checkout), never to ./key.json.
  const commands = [...quickStart.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.split('\n')).map((line) => line.replace(/\s+#.*$/, ''));
  const targets = commands.flatMap((line) => [...line.matchAll(/\s>\s*"?([^\s")]+)/g)].map((m) => m[1]!));
  assert.ok(targets.length > 0, 'the quick start writes the key somewhere');
  for (const target of targets) assert.ok(target.startsWith('/'), `the quick start writes ${target} into the working tree`);
  assert.match(gitignore, /^\/key\.json$/m, 'key.json is ignored for those who write it here anyway');
  assert.match(quickStart, /^bin\/guardctl\.js serve /m);
  assert.doesNotMatch(quickStart, /^npx guardctl serve/m, 'npx puts npm between the signal and the daemon');
});

test('no .npmrc with keys npm does not know (npm warns about them on every command)', () => {
  assert.equal(fs.existsSync(new URL('../../.npmrc', import.meta.url)), false);
  const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { allowScripts?: Record<string, boolean> };
  assert.equal(pkg.allowScripts?.['onnxruntime-node'], false, 'onnxruntime-node would download CUDA libraries: an offline install fails');
});

test('README and docs point at nothing outside the repository (its users have no ../shared)', () => {
  const root = new URL('../../', import.meta.url);
  const docs = fs.readdirSync(new URL('docs/', root), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);
  for (const file of ['README.md', ...docs]) {
    const text = fs.readFileSync(new URL(file, root), 'utf8');
    assert.doesNotMatch(text, /\.\.\/shared\b/, `${file} refers to ../shared`);
    // A relative link that climbs out of the repository's root.
    const depth = file.split('/').length - 1;
    for (const m of text.matchAll(/\]\(((?:\.\.\/)+)[^)]*\)/g)) assert.ok(m[1]!.length / 3 <= depth, `${file} links outside the repository: ${m[0]}`);
  }
});
