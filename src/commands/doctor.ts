import fs from 'node:fs';
import type { Command } from 'commander';
import type { ContextFactory } from '../cli.js';
import { section } from '../core/config.js';
import type { KeyStoreSpec } from '../keys/store-spec.js';
import { resolveKeyStore } from '../keys/store-spec.js';
import { count } from '../core/plural.js';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** A failed optional check is a warning, not a failure (nginx is not needed to serve). */
  optional?: boolean;
}

const TOOLS: Array<{ name: string; args: string[]; purpose: string }> = [
  { name: 'nginx', args: ['-v'], purpose: 'guardctl nginx' },
  { name: 'nsupdate', args: ['-V'], purpose: 'the rfc2136 DNS provider' },
  { name: 'openssl', args: ['version'], purpose: 'certificate inspection' },
];

export function registerDoctor(program: Command, contextFor: ContextFactory): void {
  program
    .command('doctor')
    .description('check this machine: Node, data directory, system tools, ONNX Runtime providers, key store, gate state (Redis)')
    .action(async (_opts: unknown, command: Command) => {
      const ctx = contextFor(command);
      const { checkGateState } = await import('../gate/state-check.js');
      const { probeExecutionProviders } = await import('../infer/ep-probe.js');
      const checks: Check[] = [nodeCheck(), homeCheck(ctx.locations.home)];
      for (const tool of TOOLS) checks.push(await toolCheck(tool.name, tool.args, tool.purpose));
      // The second probe hides the software Vulkan drivers: what `--device auto` would try (docs/serve.md).
      const [providers, [hardware]] = await Promise.all([probeExecutionProviders(), probeExecutionProviders(['webgpu'], { hardwareOnly: true })]);
      for (const ep of providers) {
        const software = ep.name === 'webgpu' && ep.ok && !hardware!.ok ? ', on a software adapter only: --device auto serves from the cpu' : '';
        checks.push({ name: `onnxruntime:${ep.name}`, ok: ep.ok, optional: ep.name !== 'cpu', detail: ep.ok ? `loads (${ep.ms} ms${software})` : ep.error! });
      }
      checks.push(await keyStoreCheck(resolveKeyStore(undefined, ctx.env, section(ctx.config, 'keys', ctx.locations.configFile).store, ctx.locations.configFile), ctx.locations.home, ctx.env));
      const fromFile = section(ctx.config, 'gate', ctx.locations.configFile).state;
      const stateSetting = ctx.env.GUARDCTL_STATE || (typeof fromFile === 'string' ? fromFile : undefined);
      checks.push({ name: 'gate state', ...(await checkGateState(stateSetting, ctx.env.GUARDCTL_STATE ? 'GUARDCTL_STATE' : `gate.state in ${ctx.locations.configFile}`)) });
      const healthy = checks.every((c) => c.ok || c.optional);
      const p = ctx.out.paint;
      const mark = (c: Check) => (c.ok ? p.green('ok  ') : c.optional ? p.yellow('warn') : p.red.bold('FAIL'));
      ctx.out.result({ ok: healthy, checks }, () =>
        [...checks.map((c) => `${mark(c)}  ${c.name.padEnd(18)} ${c.detail}`), '', healthy ? p.green('all required checks passed') : p.red('some required checks failed')].join('\n'));
      if (!healthy) ctx.setExitCode(1);
    });
}

function nodeCheck(): Check {
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  const ok = major > 20 || (major === 20 && minor >= 19);
  return { name: 'node', ok, detail: ok ? `v${process.versions.node}` : `v${process.versions.node}: guardctl needs Node >= 20.19` };
}

function homeCheck(home: string): Check {
  let st: fs.Stats;
  try {
    st = fs.statSync(home);
  } catch {
    return { name: 'data dir', ok: true, detail: `${home} (not created yet; made with mode 0700 on first use)` };
  }
  const mode = st.mode & 0o777;
  const problems: string[] = [];
  if (!st.isDirectory()) problems.push('is not a directory');
  if (mode & 0o077) problems.push(`mode ${mode.toString(8)} lets others in (chmod 700 ${home})`);
  if (process.getuid && st.uid !== process.getuid()) problems.push(`owned by uid ${st.uid}, not by this user`);
  try {
    fs.accessSync(home, fs.constants.W_OK);
  } catch {
    problems.push('is not writable');
  }
  return { name: 'data dir', ok: problems.length === 0, detail: problems.length ? `${home} ${problems.join('; ')}` : `${home} (mode ${mode.toString(8)})` };
}

async function toolCheck(name: string, args: string[], purpose: string): Promise<Check> {
  const { execa } = await import('execa');
  const r = await execa(name, args, { reject: false, timeout: 5000, all: true });
  const ok = r.exitCode === 0;
  const version = (r.all ?? '').split('\n')[0]!.trim();
  return { name, ok, optional: true, detail: ok ? version : `not found (needed for ${purpose}; apt-get install ${name === 'nsupdate' ? 'bind9-dnsutils' : name})` };
}

/** Opens the store serve would use (read-only for SQLite) and says why it cannot, naming the store but no secret. */
async function keyStoreCheck(spec: KeyStoreSpec, home: string, env: NodeJS.ProcessEnv): Promise<Check> {
  if (spec.kind === 'sqlite' && !fs.existsSync(`${home}/keys.db`)) return { name: 'key store', ok: true, detail: 'none yet (created by the first `guardctl keys create`)' };
  try {
    const { openKeyBackend } = await import('../keys/backend.js');
    const store = await openKeyBackend(spec, { home, env, readonly: true });
    try {
      const h = await store.health();
      return { name: 'key store', ok: h.ok, detail: h.ok ? `${h.path}: ${count(h.keys, 'key')}, ${h.active} active` : `${h.path}: ${h.problem}` };
    } finally {
      await store.close();
    }
  } catch (err) {
    const hint = (err as { hint?: string }).hint;
    return { name: 'key store', ok: false, detail: `${(err as Error).message}${hint ? ` (${hint})` : ''}` };
  }
}
