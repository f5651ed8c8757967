import { execa } from 'execa';
import { readProviderEnv } from '../../env.js';
import { dnsError, providerLog, scrub } from '../../errors.js';
import type { DnsProvider, ProviderContext, ProviderFactory, ProviderMeta, TxtRecord } from '../../types.js';
import { normalizeName } from '../../zone.js';

/**
 * Any DNS the other providers do not cover, through the operator's own script, called as lego's exec provider
 * calls it: `SCRIPT present FQDN. VALUE` and `SCRIPT cleanup FQDN. VALUE` (the name with its trailing dot, so
 * scripts written for lego work unchanged). Exit 0 means done; anything else fails with the end of the script's
 * stderr, which is where scripts say what went wrong.
 */
const NAME = 'exec';
const STDERR_TAIL_CHARS = 600;

export const meta: ProviderMeta = {
  name: NAME,
  description: 'Your own script, called as `SCRIPT present|cleanup FQDN. VALUE` (lego\'s exec protocol)',
  env: [
    { name: 'GUARDCTL_DNS_EXEC', aliases: ['EXEC_PATH'], required: true, secret: false, description: 'Path of the executable script (--dns-exec wins over it). It runs with guardctl\'s environment plus GUARDCTL_DNS_TTL.' },
    { name: 'GUARDCTL_DNS_EXEC_TIMEOUT', required: false, secret: false, description: 'Seconds one call of the script may take (default 120).' },
  ],
  parallel: false,
  propagationTimeoutSec: 300,
  pollIntervalSec: 10,
  docs: 'https://go-acme.github.io/lego/dns/exec/',
};

/** The values of variables that look like credentials: a failing script may print its environment. */
function envSecrets(env: NodeJS.ProcessEnv): string[] {
  return Object.entries(env)
    .filter(([k, v]) => v && v.length >= 8 && /SECRET|TOKEN|PASSWORD|PASSWD|_KEY$|APIKEY|CREDENTIAL/i.test(k))
    .map(([, v]) => v as string);
}

function tail(text: string): string {
  const trimmed = text.trim();
  return trimmed.length > STDERR_TAIL_CHARS ? `...${trimmed.slice(-STDERR_TAIL_CHARS)}` : trimmed;
}

function create(ctx: ProviderContext): DnsProvider {
  const option = ctx.options?.exec;
  const env = readProviderEnv(meta, ctx.env, { GUARDCTL_DNS_EXEC: typeof option === 'string' ? option : undefined });
  const script = env.need('GUARDCTL_DNS_EXEC');
  const rawTimeout = env.get('GUARDCTL_DNS_EXEC_TIMEOUT') ?? '120';
  const timeoutSec = Number(rawTimeout);
  if (!Number.isFinite(timeoutSec) || timeoutSec <= 0) {
    throw dnsError(NAME, `GUARDCTL_DNS_EXEC_TIMEOUT must be a positive number of seconds, not "${rawTimeout}"`, { hint: 'unset it to use the default of 120 seconds' });
  }
  const secrets = envSecrets(ctx.env);
  const log = providerLog(NAME, ctx, secrets);

  async function run(mode: 'present' | 'cleanup', record: TxtRecord): Promise<void> {
    const fqdn = `${normalizeName(record.fqdn)}.`;
    const r = await execa(script, [mode, fqdn, record.value], {
      // The script sees exactly guardctl's environment (its credentials live there), not more.
      env: { ...ctx.env, GUARDCTL_DNS_TTL: String(record.ttl) },
      extendEnv: false,
      stdin: 'ignore',
      reject: false,
      timeout: timeoutSec * 1000,
    });
    const stderr = tail(typeof r.stderr === 'string' ? r.stderr : '');
    if (r.exitCode === 0 && !r.failed) {
      log('info', `${script} ${mode} ${fqdn} succeeded`);
      return;
    }
    const details = { action: mode, exitCode: r.exitCode };
    if (r.timedOut) {
      throw dnsError(NAME, `${script} ${mode} ${fqdn} did not finish within ${timeoutSec}s`, { hint: 'make the script finish sooner or raise GUARDCTL_DNS_EXEC_TIMEOUT', details }, secrets);
    }
    const code = (r as { code?: string }).code;
    if (r.exitCode === undefined && (code === 'ENOENT' || code === 'EACCES')) {
      throw dnsError(NAME, `cannot run ${script}: ${code === 'ENOENT' ? 'no such file' : 'permission denied'}`, {
        hint: `check GUARDCTL_DNS_EXEC (or --dns-exec) and make the script executable (chmod +x ${script})`, details,
      }, secrets);
    }
    const how = r.exitCode === undefined ? `was killed (${r.signal ?? code ?? 'unknown reason'})` : `exited with status ${r.exitCode}`;
    throw dnsError(NAME, `${script} ${mode} ${fqdn} ${how}${stderr ? `: ${scrub(stderr, secrets)}` : ' and printed nothing on stderr'}`, {
      hint: 'run the script by hand with the same arguments to see what it needs',
      details,
    }, secrets);
  }

  return {
    name: NAME,
    present: (record) => run('present', record),
    cleanup: (record) => run('cleanup', record),
  };
}

export const factory: ProviderFactory = { meta, create };
