import readline from 'node:readline/promises';
import type { Command } from 'commander';
import type { ContextFactory } from '../cli.js';
import { section } from '../core/config.js';
import type { Context } from '../core/context.js';
import { usageError } from '../core/errors.js';
import { repeat } from './flag-lists.js';

/** What every part of up/status/down needs from the context; imported lazily (ACME, nginx and keys are heavy). */
async function common(ctx: Context) {
  const { loadTiers } = await import('../keys/tiers.js');
  const { resolveKeyStore } = await import('../keys/store-spec.js');
  const source = ctx.locations.configFile;
  return {
    home: ctx.locations.home,
    env: ctx.env,
    now: ctx.now,
    tiers: loadTiers(section(ctx.config, 'tiers', source), source),
    keyStore: resolveKeyStore(undefined, ctx.env, section(ctx.config, 'keys', source).store, source),
  };
}

export function registerUp(program: Command, contextFor: ContextFactory): void {
  program.command('up')
    .description('from a bare host to a signed HTTPS model service: certificate, daemon, nginx site, renewal, keys; verified, rolled back on failure')
    .option('-d, --domain <name>', 'the name the service answers to')
    .option('--dns <provider>', 'get the certificate with DNS-01 through this provider (see guardctl cert providers)')
    .option('--http', 'get the certificate with HTTP-01 through nginx on port 80 (no DNS credentials; no wildcards)')
    .option('--model <NAME=TASK:DIR[:SIZE]>', 'serve this model (repeatable; default the embedded demo models)', repeat)
    .option('--tier-key <NAME:TIER>', 'mint an API key of this tier (repeatable; default one "<domain>:free" key)', repeat)
    .option('--base-path <path>', 'serve under a sub-path, e.g. /guard')
    .option('--dry-run', 'print the plan and stop')
    .option('--port <n>', 'the daemon\'s port on 127.0.0.1', '7860')
    .option('--server <ca>', 'letsencrypt, letsencrypt-staging, zerossl, or an ACME directory URL (env GUARDCTL_ACME_SERVER)')
    .option('--email <address>', 'contact address for the CA account (env GUARDCTL_ACME_EMAIL)')
    .option('--agree-tos', 'agree to the CA\'s terms of service')
    .option('--key-type <type>', 'ec256, ec384, rsa2048, rsa3072 or rsa4096', 'ec256')
    .option('--eab-kid <kid>', 'External Account Binding key id (env GUARDCTL_EAB_KID)')
    .option('--eab-hmac-key <key>', 'External Account Binding HMAC key (env GUARDCTL_EAB_HMAC_KEY)')
    .option('--dns-timeout <duration>', 'how long to wait for the TXT records to propagate')
    .option('--dns-interval <duration>', 'how often to check')
    .option('--dns-check <whom>', 'authoritative (default) or resolvers')
    .option('--dns-resolvers <ip[:port],...>', 'DNS servers to ask instead of the system\'s', repeat)
    .option('--dns-exec <path>', 'the exec provider\'s script')
    .option('--webroot <dir>', 'the HTTP-01 webroot nginx serves at /.well-known/acme-challenge/ (default <home>/acme-webroot)')
    .option('--nginx-root <dir>', 'the nginx configuration folder', '/etc/nginx')
    .option('--nginx-bin <path>', 'the nginx executable', 'nginx')
    .option('--reload-cmd <cmd>', 'the shell command that reloads nginx (default nginx -s reload); also the certificate\'s reload hook')
    .option('--http-port <port>', 'nginx\'s HTTP port (default 80)')
    .option('--https-port <port>', 'nginx\'s HTTPS port (default 443)')
    .option('--listen-address <addr>', 'nginx listens on this address only')
    .option('--ca-file <pem>', 'trust this root when verifying (a private or test CA)')
    .option('--verify-address <ip>', 'verify by connecting here instead of the domain\'s DNS answer (TLS still checks the domain)')
    .option('--supervisor <how>', 'auto (systemd where it runs), systemd, or process (a background process with a pid file)', 'auto')
    .option('--unit-dir <dir>', 'where systemd units go', '/etc/systemd/system')
    .option('--bin <path>', 'the guardctl executable the units run (default this one)')
    .option('--env-file <file>', 'EnvironmentFile for the units (DNS provider credentials, mode 0600)', '/etc/guardctl/guardctl.env')
    .action(async (flags, cmd: Command) => {
      const ctx = contextFor(cmd);
      const c = await common(ctx);
      const { upOptionsFrom } = await import('../up/options.js');
      const { runUp } = await import('../up/up.js');
      const { formatPlan } = await import('../up/plan.js');
      const { colourDiff } = await import('../nginx/diff.js');
      const { stepProgress } = await import('../up/progress.js');
      const { lifecycleDeps } = await import('../acme/deps.js');
      const { createReporter, isInteractive } = await import('../acme/progress.js');
      const options = upOptionsFrom(flags, ctx.env, c.home, c.tiers);
      const interactive = isInteractive(ctx.out.json, ctx.env);
      const reporter = createReporter({ out: ctx.out, logger: ctx.log, interactive: false });
      const result = await runUp(options, { ...c, lifecycle: lifecycleDeps(ctx, reporter), progress: stepProgress(ctx.out, interactive) }, {
        dryRun: flags.dryRun,
        onPlan: (plan) => {
          if (!ctx.out.json) ctx.out.result(null, () => formatPlan(plan, (diff) => colourDiff(diff, ctx.out.paint)));
        },
      });
      ctx.out.result(result, () => {
        if (result.dryRun) return '(--dry-run: nothing was changed)';
        if (!result.changed) return `Nothing changed: ${result.url} is up as asked.\n${result.verified.map((v) => `  verified: ${v}`).join('\n')}\nSee guardctl status.`;
        const key = result.keys[0];
        return [
          `${result.url} is up.`,
          ...result.verified.map((v) => `  verified: ${v}`),
          ...result.keys.map((k) => `  key ${k.name} (tier ${k.tier}): id ${k.id}\n    secret ${k.secret}   <- shown once: store it now`),
          '',
          'Call it:',
          `  export GUARDCTL_SECRET=...   # the secret above`,
          `  guardctl request POST ${new URL(result.url).pathname.replace(/\/$/, '')}/api/v1/${result.task} --url ${new URL(result.url).origin} --key ${key ? key.id : 'KEY_ID'} --data '${result.task === 'moderate' ? '{"text": "hello"}' : '{"text": "hello", "target_lang": "zh"}'}'`,
          'Check it: guardctl status',
        ].join('\n');
      });
    });

  program.command('status')
    .description('what guardctl up installed and whether it is healthy (exit 1 when something needs attention)')
    .action(async (_flags, cmd: Command) => {
      const ctx = contextFor(cmd);
      const c = await common(ctx);
      const { collectStatus, formatStatus } = await import('../up/status.js');
      const report = await collectStatus(c);
      if (report.attention.length > 0) ctx.setExitCode(1);
      ctx.out.result(report, () => formatStatus(report));
    });

  program.command('down')
    .description('remove what guardctl up installed (site, daemon, units); keeps certificates and keys unless asked')
    .option('--revoke-keys', 'also revoke the keys up minted')
    .option('--delete-cert', 'also delete the certificate from the store')
    .option('--dry-run', 'print the plan and stop')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (flags: { revokeKeys?: boolean; deleteCert?: boolean; dryRun?: boolean; yes?: boolean }, cmd: Command) => {
      const ctx = contextFor(cmd);
      const c = await common(ctx);
      const { planDown, requireState, runDown } = await import('../up/down.js');
      const state = requireState(c.home);
      const o = { revokeKeys: Boolean(flags.revokeKeys), deleteCert: Boolean(flags.deleteCert) };
      const plan = planDown(state, c.home, o);
      if (!ctx.out.json) ctx.out.result(null, () => [`Plan to take down ${plan.domain}:`, ...plan.actions.map((a) => `  - ${a}`), ...plan.keeps.map((k) => `  (keeps) ${k}`)].join('\n'));
      if (flags.dryRun) {
        ctx.out.result({ plan, dry_run: true, done: [] }, () => '(--dry-run: nothing was changed)');
        return;
      }
      if (!flags.yes) await confirm(ctx, `take down ${plan.domain}?`);
      const done = await runDown(state, c, o);
      ctx.out.result({ plan, dry_run: false, done }, () => done.map((d) => `done: ${d}`).join('\n'));
    });
}

/** Asks on a terminal; anywhere else (a script, CI, --json) refuses unless --yes was given. */
async function confirm(ctx: Context, question: string): Promise<void> {
  if (ctx.out.json || !process.stdin.isTTY || !process.stderr.isTTY) {
    throw usageError('not asking for confirmation without a terminal', 'add --yes to confirm in a script (review the plan with --dry-run first)');
  }
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (await rl.question(`${question} [y/N] `)).trim().toLowerCase();
    if (answer !== 'y' && answer !== 'yes') throw usageError('not confirmed: nothing was changed');
  } finally {
    rl.close();
  }
}
