/**
 * The DNS provider contract (lego's seam): one folder per provider under src/dns/providers/, each exporting a
 * ProviderFactory; src/dns/registry.ts lists them, and docs/providers.md and `guardctl cert providers` are
 * generated from the same metadata. The ACME flow never imports a provider directly.
 */
export interface TxtRecord {
  /** The name to write, fully qualified, no trailing dot: `_acme-challenge.example.com`, or the target of
   *  its CNAME when the challenge is delegated to another zone. */
  fqdn: string;
  /** The TXT value (the base64url SHA-256 of the key authorization). */
  value: string;
  /** Seconds; providers may raise it to their minimum. */
  ttl: number;
}

export interface DnsProvider {
  readonly name: string;
  /** Adds this value at fqdn, keeping every other value there (an apex and its wildcard share one name). */
  present(record: TxtRecord): Promise<void>;
  /** Removes exactly this value, never other values at the name (records are removed by value, not by name). */
  cleanup(record: TxtRecord): Promise<void>;
}

export interface ProviderEnvVar {
  /** The primary name, e.g. CF_Token. */
  name: string;
  /** Other accepted names (lego's or acme.sh's), e.g. CLOUDFLARE_DNS_API_TOKEN. */
  aliases?: string[];
  required: boolean;
  /** Secrets may also come from NAME_FILE and are never logged. */
  secret: boolean;
  description: string;
}

export interface ProviderMeta {
  name: string;
  description: string;
  env: ProviderEnvVar[];
  /** Whether several present() calls may run at once (else the flow serialises them). */
  parallel: boolean;
  /** Suggested propagation timeout and interval, seconds, used unless --dns-timeout / --dns-interval. */
  propagationTimeoutSec: number;
  pollIntervalSec: number;
  /** A link to the provider's API documentation. */
  docs: string;
}

export interface ProviderContext {
  env: NodeJS.ProcessEnv;
  /** Progress and diagnostics; never secrets. */
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
  /** Extra options from the command line (the manual provider's --wait, the exec provider's --dns-exec). */
  options?: Record<string, string | boolean | undefined>;
}

export interface ProviderFactory {
  meta: ProviderMeta;
  create(ctx: ProviderContext): DnsProvider;
}
