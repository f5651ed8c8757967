/** The limits a tier grants; a per-key override replaces single fields. null means "no limit". */
export interface Limits {
  /** Model selectors: name patterns (`guard-*`, `*-1.8b`, `*`) or size classes (`size:small`, `size:large`). */
  models: string[];
  /** Requests in flight at once. */
  concurrency: number | null;
  /** Requests per UTC day. */
  daily: number | null;
  /** Token-bucket refill, requests per second. */
  rate: number | null;
  /** Token-bucket capacity. */
  burst: number | null;
}

export interface Tier extends Limits {
  name: string;
  /** Keys of this tier must sign with version 2 (the exact body bytes). */
  requireV2?: boolean;
  /** Every key of this tier may authenticate with a bearer credential (KeyRecord.allowBearer, for all of them). */
  allowBearer?: boolean;
}

export type KeyStatus = 'active' | 'revoked';

/** An API key as listed: everything but its secrets. */
export interface KeyRecord {
  id: string;
  name: string;
  tier: string;
  status: KeyStatus;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  lastUsedAt: number | null;
  /** CIDRs (IPv4 or IPv6); empty means any address. */
  allowIps: string[];
  overrides: Partial<Limits>;
  /** While set and in the future, the previous secret still verifies (rotation grace). */
  previousValidUntil: number | null;
  /** The key may authenticate with `Authorization: Bearer <id>.<secret>` (docs/signing.md), not only by signing. */
  allowBearer: boolean;
}

/** One secret that may verify a signature, with the time after which it no longer does (null: until rotated). */
export interface SecretEntry {
  value: Buffer;
  notAfter: number | null;
}

/** What the gate needs to authenticate a request: the record plus the secrets that currently verify. */
export interface KeyCredentials {
  record: KeyRecord;
  /** Current secret first, then the previous one during a rotation grace. */
  secrets: SecretEntry[];
}

/** The gate's view of the key store. The daemon's implementation sees revocations and rotations within 2 s. */
export interface KeyLookup {
  lookup(id: string): KeyCredentials | undefined | Promise<KeyCredentials | undefined>;
  /** Records that the key was used (cheap, may be batched). */
  touch?(id: string, at: number): void;
  /**
   * For a cached lookup: true when the store changed since the credentials for `id` were cached, which are then
   * dropped so the next lookup reads them anew; false when the cached answer is still the store's. The gate asks
   * once before refusing a signature, so a secret rotated a moment ago verifies at once.
   */
  refresh?(id: string): boolean | Promise<boolean>;
}

/** The model a request asks for, as the gate sees it. */
export interface ModelRef {
  name: string;
  size?: 'small' | 'large';
}
