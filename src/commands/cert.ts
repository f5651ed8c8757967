import type { Command } from 'commander';
import type { ContextFactory } from '../cli.js';
import type { ChalkInstance } from '../core/colour.js';
import { usageError } from '../core/errors.js';
import { table } from '../core/output.js';
import type { IssueFlags } from '../acme/options.js';
import type { RenewDeps, RenewOutcome } from '../acme/renew.js';
import type { LineageRow } from '../acme/summary.js';
import { readSecretSource } from './secret-source.js';
import { collect } from './flag-lists.js';

// acme-client, the DNS providers and the lifecycle load when a cert command runs, not at every start-up.
const load = () => import('./cert-run.js');

/** The export password: exactly one of --password-env, --password-file, --no-password. */
function exportPassword(flags: { passwordEnv?: string; passwordFile?: string; password: boolean }, env: NodeJS.ProcessEnv): string | null {
  const given = readSecretSource({
    file: flags.passwordFile,
    envVar: flags.passwordEnv,
    what: 'the export password',
    fileFlag: '--password-file',
    envFlag: '--password-env',
    fillHint: (where) => `put the password in ${where}, or give --no-password to export the key unencrypted`,
  }, env);
  if (!flags.password) {
    if (given !== undefined) throw usageError('give a password (--password-env or --password-file) or --no-password, not both');
    return null;
  }
  if (given === undefined) throw usageError('cert export needs a password to protect the private key', 'give --password-env VAR or --password-file FILE, or --no-password to write the key unencrypted on purpose');
  return given;
}

/** Days left, red under a week and yellow under three (a renewal should have happened by then). */
function daysLeft(r: LineageRow, paint: ChalkInstance): string {
  if (r.revoked_at) return paint.red('revoked');
  const text = String(r.days_left);
  return r.days_left < 7 ? paint.red(text) : r.days_left < 21 ? paint.yellow(text) : text;
}

export function registerCert(program: Command, contextFor: ContextFactory): void {
  const cert = program.command('cert').description('get, renew, list and revoke TLS certificates (ACME DNS-01 or HTTP-01)');

  cert.command('issue')
    .description('get a certificate for one or more names through a DNS provider (wildcards included) or an HTTP-01 webroot')
    .option('-d, --domain <name>', 'a name to certify (repeatable or comma-separated; *.example.com for a wildcard)', collect)
    .option('--dns <provider>', 'the DNS provider that writes the challenge records (see guardctl cert providers)')
    .option('--http-webroot <dir>', 'HTTP-01 instead: write the challenge files into this folder, which nginx serves at /.well-known/acme-challenge/ on port 80 (no wildcards; kept for renewals)')
    .option('--server <ca>', 'letsencrypt, letsencrypt-staging, zerossl, or an ACME directory URL (env GUARDCTL_ACME_SERVER)')
    .option('--email <address>', 'contact address for the CA account (env GUARDCTL_ACME_EMAIL)')
    .option('--agree-tos', 'agree to the CA\'s terms of service (needed to register an account)')
    .option('--key-type <type>', 'ec256, ec384, rsa2048, rsa3072 or rsa4096', 'ec256')
    .option('--eab-kid <kid>', 'External Account Binding key id (ZeroSSL, some private CAs; env GUARDCTL_EAB_KID)')
    .option('--eab-hmac-key <key>', 'External Account Binding HMAC key (env GUARDCTL_EAB_HMAC_KEY)')
    .option('--profile <name>', 'a certificate profile the CA offers (for example shortlived)')
    .option('--name <lineage>', 'the name of this certificate in the store (default the first name)')
    .option('--deploy-dir <dir>', 'also copy cert.pem, chain.pem, fullchain.pem and privkey.pem here')
    .option('--cert-file <file>', 'copy the certificate here')
    .option('--key-file <file>', 'copy the private key here (mode 0600)')
    .option('--fullchain-file <file>', 'copy the certificate and its chain here')
    .option('--reload-cmd <cmd>', 'run this shell command after each new certificate (for example "systemctl reload nginx")')
    .option('--dns-timeout <duration>', 'how long to wait for the TXT records to reach every name server (default the provider\'s)')
    .option('--dns-interval <duration>', 'how often to check (default the provider\'s)')
    .option('--dns-check <whom>', 'authoritative (default): wait until every authoritative name server of the zone serves the records; resolvers: until the --dns-resolvers do (split horizon)')
    .option('--dns-resolvers <ip[:port],...>', 'ask these DNS servers instead of the system\'s to follow CNAMEs and find the zone\'s name servers', collect)
    .option('--dns-exec <path>', 'the exec provider\'s script (env GUARDCTL_DNS_EXEC)')
    .option('--wait <duration>', 'the manual provider: wait this long after showing the record instead of asking for Enter')
    .action(async (flags: IssueFlags, cmd: Command) => {
      const ctx = contextFor(cmd);
      const { issueCertificate, issueOptionsFrom, lifecycleDeps, reporterFor } = await load();
      const opts = issueOptionsFrom(flags, ctx.env);
      const reporter = reporterFor(ctx);
      reporter.start(`issuing ${opts.names.join(', ')}`);
      let result;
      try {
        result = await issueCertificate(opts, lifecycleDeps(ctx, reporter));
      } catch (err) {
        reporter.stop(false);
        throw err;
      }
      reporter.stop(true, `issued ${opts.names.join(', ')}`);
      const m = result.meta;
      ctx.out.result({ lineage: m.lineage, names: m.names, dir: result.dir, serial: m.cert.serial, issuer: m.cert.issuer, not_before: m.cert.notBefore, not_after: m.cert.notAfter, next_renewal_at: m.nextRenewalAt, deployed: result.deployed }, () => [
        `Certificate "${m.lineage}" for ${m.names.join(', ')}`,
        `  files:        ${result.dir}/{cert,chain,fullchain,privkey}.pem`,
        `  issuer:       ${m.cert.issuer}`,
        `  valid until:  ${m.cert.notAfter}`,
        `  renew after:  ${m.nextRenewalAt} (run guardctl cert renew --all from a timer: guardctl systemd render)`,
        ...(result.deployed.length > 0 ? [`  deployed to:  ${result.deployed.join(', ')}`] : []),
      ].join('\n'));
    });

  cert.command('renew')
    .description('renew the certificates that are due (ARI window, else when a third of the lifetime is left)')
    .argument('[name]', 'one certificate (see guardctl cert list)')
    .option('--all', 'every certificate in the store')
    .option('--force', 'renew now even when not due (no random delay)')
    .option('--dry-run', 'only say what is due and check the DNS provider\'s configuration; change nothing')
    .option('--keep-going', 'with --all: go on with the others after a failure')
    .option('--on-failure <cmd>', 'run this shell command for each failure (env GUARDCTL_LINEAGE, GUARDCTL_ERROR)')
    .action(async (name: string | undefined, flags: { all?: boolean; force?: boolean; dryRun?: boolean; keepGoing?: boolean; onFailure?: string }, cmd: Command) => {
      const ctx = contextFor(cmd);
      const { CertStore, jitterStep, lifecycleDeps, renewMany, reporterFor } = await load();
      if ((name === undefined) === !flags.all) throw usageError(name ? 'give a certificate name or --all, not both' : 'which certificate?', 'guardctl cert renew NAME, or guardctl cert renew --all');
      const store = new CertStore(ctx.locations.home);
      const names = name !== undefined ? [name] : store.list();
      if (name !== undefined) store.readMeta(name);
      const reporter = reporterFor(ctx);
      const deps: RenewDeps = { ...lifecycleDeps(ctx, reporter), beforeRenewal: jitterStep(ctx, reporter, Boolean(flags.force)) };
      const onLineage = (lineage: string, outcome: RenewOutcome | 'start' | 'failed') => {
        if (outcome === 'start') reporter.start(`checking ${lineage}`);
        else reporter.stop(outcome !== 'failed', `${lineage}: ${outcome === 'failed' ? 'failed' : outcome.status}`);
      };
      const report = await renewMany(names, { force: flags.force, dryRun: flags.dryRun, keepGoing: flags.keepGoing, onFailure: flags.onFailure, onLineage }, deps)
        .finally(() => reporter.stop(false));
      const only = report.failures.length === 1 && names.length === 1 ? report.failures[0]!.error : undefined;
      if (only !== undefined) throw only;
      if (report.failures.length > 0) ctx.setExitCode(1);
      ctx.out.result({ results: report.results, failures: report.failures.map((f) => ({ lineage: f.lineage, error: f.message })), skipped: report.skipped }, () => {
        if (names.length === 0) return 'No certificates yet: get one with guardctl cert issue -d NAME --dns PROVIDER';
        const rows = report.results.map((r) => [r.lineage, r.status, r.serial, r.nextRenewalAt, r.reason]);
        for (const f of report.failures) rows.push([f.lineage, 'FAILED', '-', '-', f.message]);
        for (const s of report.skipped) rows.push([s, 'skipped', '-', '-', 'an earlier renewal failed (use --keep-going)']);
        return table(['NAME', 'RESULT', 'SERIAL', 'NEXT RENEWAL', 'WHY'], rows);
      });
    });

  cert.command('list')
    .description('list certificates: names, issuer, expiry, next renewal, last error')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = contextFor(cmd);
      const { CertStore, lineageRows } = await load();
      const rows = lineageRows(new CertStore(ctx.locations.home), ctx.now());
      ctx.out.result({ certificates: rows }, () => rows.length === 0
        ? 'No certificates yet: get one with guardctl cert issue -d NAME --dns PROVIDER'
        : table(['NAME', 'DOMAINS', 'ISSUER', 'NOT AFTER', 'DAYS LEFT', 'NEXT RENEWAL', 'LAST ERROR'], rows.map((r) => [
          r.name, r.names.join(','), r.issuer, r.not_after, daysLeft(r, ctx.out.paint),
          r.placeholder ? ctx.out.paint.yellow('placeholder: needs cert issue') : r.next_renewal_at, r.last_error?.message ?? '-',
        ])));
    });

  cert.command('revoke')
    .description('revoke a certificate (the next cert renew replaces it)')
    .argument('<name>', 'the certificate (see guardctl cert list)')
    .option('--reason <reason>', 'unspecified, keyCompromise, affiliationChanged, superseded or cessationOfOperation', 'unspecified')
    .action(async (name: string, flags: { reason: string }, cmd: Command) => {
      const ctx = contextFor(cmd);
      const { checkReason, lifecycleDeps, reporterFor, revokeLineage } = await load();
      const reason = checkReason(flags.reason);
      const reporter = reporterFor(ctx);
      const meta = await revokeLineage(name, reason, lifecycleDeps(ctx, reporter));
      ctx.out.result({ lineage: name, serial: meta.cert.serial, revoked_at: meta.revokedAt, reason: flags.reason }, () => `Revoked certificate ${meta.cert.serial} of "${name}"; get a new one with guardctl cert renew ${name}`);
    });

  cert.command('rollback')
    .description('put the certificate from before the last renewal back in place (and deploy it)')
    .argument('<name>', 'the certificate (see guardctl cert list)')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const ctx = contextFor(cmd);
      const { lifecycleDeps, reporterFor, rollbackLineage } = await load();
      const { meta, from, deployed } = await rollbackLineage(name, lifecycleDeps(ctx, reporterFor(ctx)));
      ctx.out.result({ lineage: name, serial: meta.cert.serial, replaced: from, not_after: meta.cert.notAfter, deployed }, () => `Certificate "${name}" is back to ${meta.cert.serial} (valid until ${meta.cert.notAfter}); ${from} was put aside`);
    });

  cert.command('export')
    .description('write the key, certificate and chain into one file: PKCS#12 (.p12/.pfx) or a PEM bundle')
    .argument('<name>', 'the certificate (see guardctl cert list)')
    .requiredOption('--out <file>', 'where to write it (mode 0600, replaced atomically)')
    .option('--format <format>', 'p12 (Java, IIS, appliances) or pem-bundle (key, certificate and chain in one PEM)', 'p12')
    .option('--password-env <var>', 'the password that protects the key, from this environment variable')
    .option('--password-file <file>', 'the password, from this file')
    .option('--no-password', 'leave the key unencrypted (and the .p12 without a MAC), on purpose')
    .action(async (name: string, flags: { out: string; format: string; passwordEnv?: string; passwordFile?: string; password: boolean }, cmd: Command) => {
      const ctx = contextFor(cmd);
      const { checkExportFormat, exportLineage } = await import('../acme/export.js');
      const format = checkExportFormat(flags.format);
      const password = exportPassword(flags, ctx.env);
      const r = exportLineage(ctx.locations.home, name, format, flags.out, password);
      if (password === null) ctx.out.warn(`${r.file} holds the private key unencrypted (--no-password): keep it as safe as privkey.pem`);
      ctx.out.result({ lineage: name, ...r }, () => `wrote ${r.file} (${format === 'p12' ? 'PKCS#12' : 'PEM bundle'}, certificate ${r.serial} with ${r.certificates - 1} chain certificate${r.certificates === 2 ? '' : 's'}, key ${r.encrypted ? 'encrypted with AES-256' : 'unencrypted'})`);
    });

  cert.command('providers')
    .description('list the DNS providers and the environment variables each one reads')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = contextFor(cmd);
      const { providerMetadata } = await import('../dns/registry.js');
      const metas = providerMetadata();
      ctx.out.result({ providers: metas }, () => metas.map((m) => [
        `${m.name}: ${m.description}`,
        ...m.env.map((v) => `    ${v.name}${v.aliases?.length ? ` (or ${v.aliases.join(', ')})` : ''}${v.required ? ' [required]' : ''}${v.secret ? ' [secret, or _FILE]' : ''}: ${v.description}`),
        `    propagation: ${m.propagationTimeoutSec}s timeout, checked every ${m.pollIntervalSec}s; ${m.parallel ? 'records written in parallel' : 'records written one at a time'}; ${m.docs}`,
      ].join('\n')).join('\n\n'));
    });
}
