import path from 'node:path';
import type { Command } from 'commander';
import type { ContextFactory } from '../cli.js';
import { writeFileAtomic, ensurePrivateDir } from '../core/atomic.js';
import type { Context } from '../core/context.js';
import { usageError } from '../core/errors.js';
import { binPathsUnderHome, renderUnits } from '../systemd/units.js';

/** The folders the store's lineages deploy to: the renew unit must be allowed to write there. */
async function deployDirs(ctx: Context): Promise<string[]> {
  const { deployPaths } = await import('../acme/deploy.js');
  const { CertStore } = await import('../acme/store.js');
  const store = new CertStore(ctx.locations.home);
  const dirs = new Set<string>();
  for (const name of store.list()) {
    const deploy = store.readMeta(name).deploy;
    if (deploy) for (const file of Object.values(deployPaths(deploy))) dirs.add(path.dirname(file));
  }
  return [...dirs];
}

function defaultBin(): string {
  const script = process.argv[1];
  return script && /guardctl(\.js)?$/.test(script) ? path.resolve(script) : '/usr/local/bin/guardctl';
}

export function registerSystemd(program: Command, contextFor: ContextFactory): void {
  const systemd = program.command('systemd').description('systemd units for certificate renewal and the daemon');
  systemd.command('render')
    .description('write guardctl-renew.service + .timer (twice a day) and guardctl.service, hardened')
    .option('--out <dir>', 'write the units into this folder (for example /etc/systemd/system) instead of printing them')
    .option('--bin <path>', 'the guardctl executable the units run (default this one)')
    .option('--user <user>', 'run the units as this user (default root)')
    .option('--env-file <file>', 'EnvironmentFile with the DNS provider credentials (mode 0600)', '/etc/guardctl/guardctl.env')
    .option('--rw-path <dir>', 'another folder the renewal may write (deploy targets; repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--on-failure <cmd>', 'the renewal\'s --on-failure command (alerting)')
    .option('--serve-args <args>', 'arguments for guardctl serve in guardctl.service', '--port 7860')
    .option('--state <store>', 'the daemon\'s gate state (GUARDCTL_STATE): sqlite, memory or redis://HOST:PORT (a password goes in --env-file)')
    .option('--keys <store>', 'the daemon\'s key store (GUARDCTL_KEYS): sqlite or postgres://USER@HOST/DB (a password goes in --env-file)')
    .action(async (flags: { out?: string; bin?: string; user?: string; envFile: string; rwPath?: string[]; onFailure?: string; serveArgs: string; state?: string; keys?: string }, cmd: Command) => {
      const ctx = contextFor(cmd);
      if (flags.user !== undefined && !/^[a-z_][a-z0-9_-]{0,31}$/.test(flags.user)) throw usageError(`"${flags.user}" is not a user name`);
      const bin = flags.bin ?? defaultBin();
      const units = renderUnits({
        bin,
        home: ctx.locations.home,
        user: flags.user,
        envFile: flags.envFile,
        rwPaths: [...(await deployDirs(ctx)), ...(flags.rwPath ?? [])],
        onFailure: flags.onFailure,
        serveArgs: flags.serveArgs.split(/\s+/).filter(Boolean),
        onCalendar: '*-*-* 00,12:00:00',
        randomizedDelaySec: '12h',
        state: flags.state,
        keys: flags.keys,
        pathEnv: ctx.env.PATH ?? '',
      });
      const inHome = binPathsUnderHome(bin, ctx.env.PATH ?? '');
      if (inHome.length > 0) ctx.out.warn(`${inHome.join(' and ')} ${inHome.length === 1 ? 'is' : 'are'} under a home directory: the units say ProtectHome=read-only (not yes) so that systemd can run ${inHome.length === 1 ? 'it' : 'them'}; install guardctl and node outside /home and /root to hide home directories completely`);
      const files = Object.entries(units).map(([name, content]) => ({ name, content, ...(flags.out ? { path: path.join(path.resolve(flags.out), name) } : {}) }));
      if (flags.out) {
        ensurePrivateDir(path.resolve(flags.out));
        for (const f of files) writeFileAtomic(f.path!, f.content, 0o644);
      }
      ctx.out.result({ files: files.map((f) => (flags.out ? { name: f.name, path: f.path } : f)) }, () => flags.out
        ? [...files.map((f) => `wrote ${f.path}`), 'next: systemctl daemon-reload && systemctl enable --now guardctl-renew.timer'].join('\n')
        : files.map((f) => `# ---- ${f.name} ----\n${f.content}`).join('\n'));
    });
}
