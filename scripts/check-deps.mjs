#!/usr/bin/env node
// package.json lists exactly what the code imports. Fails (exit 1) on:
//  - an import in src/ or bin/ (what users run) of a package that is not in "dependencies"; a type-only import
//    may name a devDependency (it is erased), and so may an import on a line marked `check-deps: dev-only`
//    (bin/'s fallback to tsx for a checkout without a build);
//  - an import in scripts/, test/ or bench/ (development only; not in package.json "files") of a package in
//    neither "dependencies" nor "devDependencies";
//  - a dependency that nothing in src/ or bin/ imports;
//  - a devDependency that no file imports or reads from node_modules/, no npm script runs (by package or
//    command name), and, for @types/X, whose X nothing imports (@types/node: any node: builtin).
// node: builtins, subpath imports ('x/y' is package x, '@s/x/y' is @s/x) and the package's own name are handled.
// Usage: node scripts/check-deps.mjs [ROOT]   (ROOT defaults to the repository this script lives in)
import { builtinModules } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..'));
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const deps = new Set(Object.keys(pkg.dependencies ?? {}));
const devDeps = new Set(Object.keys(pkg.devDependencies ?? {}));
const RUNTIME_DIRS = ['src', 'bin'];
const DEV_DIRS = ['scripts', 'test', 'bench'];
const DEV_ONLY = /check-deps: dev-only/;
const SOURCE = /\.(?:[cm]?[jt]s|tsx)$/;

function files(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.name === 'node_modules' || e.name.startsWith('.')) return [];
    const p = path.join(dir, e.name);
    return e.isDirectory() ? files(p) : SOURCE.test(e.name) ? [p] : [];
  });
}

// Static imports and re-exports (with `type` noted), side-effect imports, import() and require() of literals.
const PATTERNS = [
  /^\s*(import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gm,
  /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  /\brequire\(\s*['"]([^'"]+)['"]\s*\)/g,
];

/** The package a specifier names ('x/y' -> 'x', '@s/x/y' -> '@s/x'); null for relative paths and builtins. */
export function packageOf(spec) {
  if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('#')) return null;
  if (spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0])) return null;
  const parts = spec.split('/');
  const name = spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
  return name === pkg.name ? null : name;
}

const lineAt = (text, index) => text.slice(text.lastIndexOf('\n', index) + 1, (text.indexOf('\n', index) + 1 || text.length + 1) - 1);

/**
 * { name, typeOnly, devOnly, file } for every package import in `file`, the packages it reads straight from
 * node_modules/ (fixture builders), and whether it uses a node builtin.
 */
function importsOf(file) {
  const text = fs.readFileSync(file, 'utf8');
  const out = [];
  let builtin = false;
  PATTERNS.forEach((re, i) => {
    for (const m of text.matchAll(re)) {
      const spec = i === 0 ? m[3] : m[1];
      if (spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0])) builtin = true;
      const name = packageOf(spec);
      if (name) out.push({ name, typeOnly: i === 0 && Boolean(m[2]), devOnly: DEV_ONLY.test(lineAt(text, m.index)), file });
    }
  });
  const read = [...text.matchAll(/node_modules\/((?:@[\w.-]+\/)?[\w.-]+)/g)].map((m) => m[1]);
  return { imports: out, read, builtin };
}

function scan(dirs) {
  const all = dirs.flatMap((d) => files(path.join(root, d))).map(importsOf);
  return { imports: all.flatMap((r) => r.imports), read: all.flatMap((r) => r.read), builtin: all.some((r) => r.builtin) };
}

/** The command names a package installs (its "bin"), for matching npm scripts. */
function binsOf(name) {
  try {
    const p = JSON.parse(fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8'));
    return typeof p.bin === 'string' ? [name.split('/').pop()] : Object.keys(p.bin ?? {});
  } catch {
    return [];
  }
}

export function checkDeps() {
  const problems = [];
  const rel = (f) => path.relative(root, f);
  const runtime = scan(RUNTIME_DIRS);
  const dev = scan(DEV_DIRS);
  const used = new Set([...runtime.imports, ...dev.imports].map((i) => i.name).concat(runtime.read, dev.read));
  const usesBuiltins = runtime.builtin || dev.builtin;

  const seen = new Set();
  for (const i of runtime.imports) {
    const key = `${i.name}\0${i.file}`;
    if (seen.has(key) || deps.has(i.name) || ((i.typeOnly || i.devOnly) && devDeps.has(i.name))) continue;
    seen.add(key);
    problems.push(devDeps.has(i.name)
      ? `${rel(i.file)} imports "${i.name}", a devDependency: code that runs for users needs it in "dependencies"`
      : `${rel(i.file)} imports "${i.name}", which package.json does not declare`);
  }
  for (const i of dev.imports) {
    const key = `${i.name}\0${i.file}`;
    if (seen.has(key) || deps.has(i.name) || devDeps.has(i.name)) continue;
    seen.add(key);
    problems.push(`${rel(i.file)} imports "${i.name}", which package.json does not declare`);
  }

  const runtimeUsed = new Set(runtime.imports.filter((i) => !i.typeOnly && !i.devOnly).map((i) => i.name));
  for (const name of deps) {
    if (runtimeUsed.has(name)) continue;
    problems.push(used.has(name)
      ? `dependency "${name}" is imported only by tests, benchmarks or type imports: move it to "devDependencies"`
      : `dependency "${name}" is declared but nothing in ${RUNTIME_DIRS.join('/, ')}/ imports it: remove it or use it`);
  }
  const scripts = Object.values(pkg.scripts ?? {}).join('\n');
  const inScripts = (name) => [name, ...binsOf(name)].some((cmd) => new RegExp(`(^|[\\s'"=/])${cmd.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}(?=$|[\\s'"/])`, 'm').test(scripts));
  for (const name of devDeps) {
    if (used.has(name) || inScripts(name)) continue;
    if (name.startsWith('@types/')) {
      const target = name.slice('@types/'.length).replace(/^(.+)__(.+)$/, '@$1/$2');
      if (target === 'node' ? usesBuiltins : used.has(target)) continue;
    }
    problems.push(`devDependency "${name}" is declared but no file imports it and no npm script runs it: remove it`);
  }
  return problems;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const problems = checkDeps();
  if (problems.length > 0) {
    console.error(`package.json does not match the imports (${problems.length} problem${problems.length === 1 ? '' : 's'}):`);
    for (const p of problems) console.error(`  - ${p}`);
    process.exit(1);
  }
  console.log(`package.json matches the imports: ${deps.size} dependencies, ${devDeps.size} devDependencies`);
}
