import type { AriState } from './ari.js';

export const KEY_TYPES = ['ec256', 'ec384', 'rsa2048', 'rsa3072', 'rsa4096'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

/** Where the certificate is copied after each issuance (besides the store), and what reloads its user. */
export interface DeployTarget {
  dir?: string;
  certFile?: string;
  keyFile?: string;
  fullchainFile?: string;
  reloadCmd?: string;
}

/** The DNS side of a lineage: which provider, its non-secret options, and the propagation settings. */
export interface DnsSettings {
  provider: string;
  options: Record<string, string | boolean>;
  timeoutSec?: number;
  intervalSec?: number;
  resolvers?: string[];
  /** 'authoritative' (default): every authoritative name server of the zone; 'resolvers': the --dns-resolvers. */
  check?: 'authoritative' | 'resolvers';
}

/** What the store knows about the installed certificate. Times are ISO strings in meta.json. */
export interface CertFacts {
  serial: string;
  issuer: string;
  notBefore: string;
  notAfter: string;
  issuedAt: string;
  /** The ARI identifier (null when the certificate has no AKI). */
  certId: string | null;
}

/** `<home>/certs/<lineage>/meta.json`. Never holds secrets: provider credentials stay in the environment. */
export interface LineageMeta {
  version: 1;
  lineage: string;
  names: string[];
  server: string;
  keyType: KeyType;
  email?: string;
  profile?: string;
  dns: DnsSettings;
  deploy?: DeployTarget;
  cert: CertFacts;
  ari?: AriState;
  nextRenewalAt: string;
  /** The serial of the certificate the deploy target and reload command last succeeded with. */
  deployedSerial?: string;
  revokedAt?: string;
  lastAttemptAt?: string;
  lastError?: { at: string; message: string } | null;
  /** A self-signed stand-in made before the first issuance (src/acme/placeholder.ts): never renewed or deployed. */
  placeholder?: true;
}
