import path from 'node:path';
import type { Command } from 'commander';
import type { ContextFactory } from '../cli.js';
import { parseDuration } from '../core/duration.js';
import { usageError } from '../core/errors.js';
import { PLACEHOLDER_DAYS } from '../acme/placeholder-flag.js';
import { formatBundle } from '../nginx/bundle.js';
import type { SiteFlags } from '../nginx/flags.js';
import { checkDomain, checkNginxPath } from '../nginx/validate.js';
import { collect, repeat } from './flag-lists.js';

/** The flags that describe a site, shared by render and install. */
function siteFlags(cmd: Command): Command {
  return cmd
    .option('-d, --domain <name>', 'a name the site answers to (repeatable or comma-separated)', collect)
    .option('--upstream <host:port>', 'where guardctl serve listens, for example 127.0.0.1:7860 (repeatable: several make a least_conn pool, see docs/scaling.md)', repeat)
    .option('--max-fails <n>', 'with several upstreams: failed attempts within --fail-timeout before a daemon is skipped (default 3)')
    .option('--fail-timeout <duration>', 'with several upstreams: that window, and how long a failed daemon is skipped (default 10s)')
    .option('--name <name>', 'the site\'s name: file <name>.conf and its snippets folder (default the first domain)')
    .option('--path <prefix>', 'serve under this URL prefix, like /guard/ (then run guardctl serve --base-path /guard)', '/')
    .option('--cert <lineage>', 'a certificate from guardctl\'s store (see guardctl cert list)')
    .option('--cert-file <file>', 'the certificate chain (fullchain PEM), with --key-file')
    .option('--key-file <file>', 'its private key')
    .option('--bootstrap', 'HTTP only (ACME webroot + proxy), for before the certificate exists; the default without a certificate')
    .option('--tls-profile <profile>', 'Mozilla profile: intermediate (TLS 1.2 + 1.3) or modern (TLS 1.3 only)', 'intermediate')
    .option('--hsts', 'send Strict-Transport-Security (max-age=63072000; includeSubDomains)')
    .option('--hsts-preload', 'add preload to HSTS (needs --hsts)')
    .option('--csp <policy>', 'replace the Content-Security-Policy, or "off" to send none')
    .option('--ocsp-stapling', 'staple OCSP answers (only for certificates that name an OCSP responder)')
    .option('--rate-limit <rate>', 'requests per client address, like 10r/s; beyond it nginx answers 429')
    .option('--burst <n>', 'requests allowed over the rate without delay (default 20)')
    .option('--allow <cidr>', 'only these addresses or networks may reach the API (repeatable; others get 403)', collect)
    .option('--max-body <size>', 'largest request body (client_max_body_size)', '1m')
    .option('--timeout <duration>', 'how long a proxied request may run (proxy_read_timeout)', '300s')
    .option('--acme-webroot <dir>', 'serve /.well-known/acme-challenge/ from this folder on the HTTP port')
    .option('--nginx-version <x.y.z>', 'render for this nginx version instead of the installed one')
    .option('--openssl-version <x.y.z>', 'the OpenSSL that nginx runs with (3.5+ adds X25519MLKEM768)')
    .option('--http-port <port>', 'the HTTP port (default 80)')
    .option('--https-port <port>', 'the HTTPS port (default 443)')
    .option('--listen-address <addr>', 'listen on this address only (default every IPv4 and IPv6 address)')
    .option('--nginx-bin <path>', 'the nginx executable', 'nginx');
}

/** The lineage and names a --placeholder-cert would stand in for; undefined when the lineage exists already. */
async function placeholderFor(flags: SiteFlags, home: string): Promise<{ lineage: string; names: string[] } | undefined> {
  if (flags.cert === undefined) throw usageError('--placeholder-cert needs --cert LINEAGE', 'name the certificate the placeholder stands in for, e.g. --cert guard.example.com');
  const { lineagePaths } = await import('../nginx/tls.js');
  const { CertStore } = await import('../acme/store.js');
  lineagePaths(home, flags.cert, true); // refuses a name that is no lineage name before anything is written
  if (new CertStore(home).exists(flags.cert)) return undefined;
  return { lineage: flags.cert, names: (flags.domain ?? []).map(checkDomain) };
}

export function registerNginx(program: Command, contextFor: ContextFactory): void {
  const nginx = program.command('nginx').description('render, check and install the nginx site in front of guardctl serve');

  siteFlags(nginx.command('render'))
    .description('render the site file and its snippets (printed, or written with --out)')
    .option('--out <file>', 'write the site here and its snippets into guardctl-snippets/<name>/ beside it')
    .option('--snippets-dir <dir>', 'the folder the snippets live in (default see --out; else /etc/nginx/snippets/guardctl/<name>)')
    .action(async (flags: SiteFlags & { out?: string; snippetsDir?: string }, cmd: Command) => {
      const ctx = contextFor(cmd);
      const { siteNameFrom, siteOptionsFrom } = await import('../nginx/flags.js');
      const { renderSite, writeRendered } = await import('../nginx/render.js');
      const name = siteNameFrom(flags);
      const out = flags.out === undefined ? undefined : path.resolve(flags.out);
      const snippetsDir = flags.snippetsDir !== undefined
        ? checkNginxPath(path.resolve(flags.snippetsDir), '--snippets-dir')
        : out !== undefined ? path.join(path.dirname(out), 'guardctl-snippets', name) : path.join('/etc/nginx/snippets/guardctl', name);
      // Rendering writes no certificate and may be for another host: the files need not exist here (yet).
      const rendered = renderSite(await siteOptionsFrom(flags, { home: ctx.locations.home, snippetsDir, certMayBeMissing: true }));
      const snippetFiles = Object.fromEntries(Object.entries(rendered.snippets).map(([f, c]) => [path.join(snippetsDir, f), c]));
      if (out === undefined) {
        ctx.out.result({ name, site: rendered.site, snippets: snippetFiles, snippets_dir: snippetsDir }, () => formatBundle({ name, site: rendered.site, snippets: snippetFiles }));
        return;
      }
      const written = writeRendered(rendered, out, snippetsDir);
      ctx.out.result({ name, site_file: out, snippets_dir: snippetsDir, files: written }, () => [
        ...written.map((f) => `wrote ${f}`),
        `next: guardctl nginx check ${out}, then guardctl nginx install --file ${out}`,
      ].join('\n'));
    });

  nginx.command('check')
    .description('nginx -t on one site file inside a throwaway configuration; warnings fail too')
    .argument('<file>', 'the site file (as included inside http {}), or what nginx render printed (site and snippets)')
    .option('--nginx-bin <path>', 'the nginx executable', 'nginx')
    .action(async (file: string, flags: { nginxBin: string }, cmd: Command) => {
      const ctx = contextFor(cmd);
      const { checkSite, formatProblems } = await import('../nginx/check.js');
      const r = await checkSite(file, { nginxBin: flags.nginxBin });
      if (!r.ok) ctx.setExitCode(1);
      ctx.out.result({ ok: r.ok, file: path.resolve(file), problems: r.problems }, () => (r.ok
        ? `${file}: nginx -t accepts it`
        : `${file}: nginx -t does not accept it\n${formatProblems(r.problems, ctx.out.paint)}`));
    });

  siteFlags(nginx.command('install'))
    .description('install the site (atomically), nginx -t the whole configuration, reload; roll back on failure')
    .option('--file <file>', 'install this rendered site file (with its snippets) instead of rendering from the flags')
    .option('--nginx-root <dir>', 'the nginx configuration folder', '/etc/nginx')
    .option('--reload-cmd <cmd>', 'the shell command that reloads nginx (default nginx -s reload)')
    .option('--reload-timeout <duration>', 'how long to wait for the nginx master to start workers with the new configuration', '10s')
    .option('--dry-run', 'print the unified diff of what would change; change nothing')
    .option('--placeholder-cert', `with --cert LINEAGE that does not exist yet: put a self-signed placeholder (valid ${PLACEHOLDER_DAYS} days) in its place, so nginx starts with HTTPS before the CA answers; cert issue --name LINEAGE replaces it`)
    .action(async (flags: SiteFlags & { file?: string; nginxRoot: string; reloadCmd?: string; reloadTimeout: string; dryRun?: boolean; placeholderCert?: boolean }, cmd: Command) => {
      const ctx = contextFor(cmd);
      const { siteNameFrom, siteOptionsFrom } = await import('../nginx/flags.js');
      const { installSite, installTargets, siteFromFile } = await import('../nginx/install.js');
      const { renderSite } = await import('../nginx/render.js');
      const root = path.resolve(flags.nginxRoot);
      const verifyTimeoutMs = parseDuration(flags.reloadTimeout, '--reload-timeout');
      let name: string;
      let files;
      if (flags.file !== undefined) {
        if (flags.domain !== undefined || flags.upstream !== undefined) throw usageError('give --file, or the site flags (--domain, --upstream...), not both');
        if (flags.placeholderCert) throw usageError('--placeholder-cert works with the site flags, not --file', 'render and install from --domain ... --cert LINEAGE --placeholder-cert');
        const parsed = siteFromFile(flags.file);
        name = flags.name !== undefined ? siteNameFrom(flags) : parsed.name ?? siteNameFrom({ name: path.basename(flags.file).replace(/\.conf$/, '') });
        files = siteFromFile(flags.file, installTargets(root, name).snippetsDir);
      } else {
        name = siteNameFrom(flags);
        const snippetsDir = installTargets(root, name).snippetsDir;
        const placeholder = flags.placeholderCert ? await placeholderFor(flags, ctx.locations.home) : undefined;
        if (placeholder && !flags.dryRun) {
          const { ensurePlaceholder } = await import('../acme/placeholder.js');
          const made = await ensurePlaceholder(ctx.locations.home, placeholder.lineage, placeholder.names, ctx.now());
          if (made.created) ctx.out.warn(`certificate "${placeholder.lineage}" does not exist yet: nginx gets a self-signed placeholder (valid ${PLACEHOLDER_DAYS} days, browsers will warn) until guardctl cert issue --name ${placeholder.lineage} replaces it`);
        }
        files = renderSite(await siteOptionsFrom(flags, { home: ctx.locations.home, snippetsDir, certMayBeMissing: Boolean(placeholder && flags.dryRun) }));
      }
      if (!flags.dryRun) ctx.out.note(`installing the nginx site "${name}" into ${root}`);
      const { colourDiff } = await import('../nginx/diff.js');
      const r = await installSite(root, name, files, { nginxBin: flags.nginxBin, reloadCmd: flags.reloadCmd, verifyTimeoutMs, dryRun: flags.dryRun });
      for (const note of r.notes) ctx.out.warn(note);
      ctx.out.result({ name, layout: r.layout, site_file: r.siteFile, enabled_link: r.enabledLink, snippets_dir: r.snippetsDir, changed: r.changed, dry_run: r.dryRun, reloaded: r.reloaded, reload_verified: r.reloadVerified, diff: r.diff, warnings: r.warnings }, () => {
        if (r.dryRun) return r.diff === '' ? `nothing would change for the site "${name}"` : colourDiff(r.diff, ctx.out.paint);
        if (!r.changed) return `the site "${name}" is already installed as rendered (nothing changed, no reload)`;
        return [`installed ${r.siteFile}${r.enabledLink ? ` (enabled: ${r.enabledLink})` : ''}`, `snippets: ${r.snippetsDir}/`, `nginx -t passed; nginx reloaded${r.reloadVerified ? ' (its new workers run the site)' : ''}`].join('\n');
      });
    });
}
