import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { SCRIPTS, type ScriptName } from './redis-scripts.js';
import type { RedisStateUrl } from './redis-url.js';
import {
  msUntilUtcMidnight, StateUnavailableError, utcDay, type Admission, type AdmissionResult, type AuthFailurePolicy, type GateState,
  type LimitOutcome, type NonceResult, type StateHealth,
} from './state.js';

/** Addresses whose block this daemon knows at most; past it the expired ones go, then all (Redis still refuses them). */
const KNOWN_BLOCKS_MAX = 100_000;

export interface RedisStateOptions extends Pick<RedisStateUrl, 'connect' | 'describe' | 'leaseMs' | 'timeoutMs' | 'prefix'> {
  nonceCapacity: number;
  authFailures: AuthFailurePolicy;
  /** The tests' fake clock; without it every script reads the Redis server's clock (one clock for all daemons). */
  clock?: () => number;
}

type Scripted = { [K in ScriptName]: (...args: Array<string | number>) => Promise<unknown> };

/**
 * The gate's state in Redis or Valkey, shared by every daemon that names the same URL, so that limits hold across
 * them: each check-and-update is one Lua script (redis-scripts.ts), atomic in Redis whatever the daemons do.
 *
 * Failure policy: fail closed, fast. Commands are never queued while Redis is away (no offline queue, no retry of
 * a command in flight) and each is bounded by `timeoutMs`: a request that cannot be checked is refused with 503
 * state_unavailable. ioredis reconnects by itself (every 50-500 ms), and service resumes with it.
 *
 * Concurrency slots are leased: each is a member of a sorted set scored by the end of its lease, renewed every
 * lease/3 while its request runs. A daemon that dies (kill -9, power cut) holds its slots at most `leaseMs` more.
 * A daemon cut off from Redis for longer than the lease loses its slots the same way (its requests finish, and
 * for that while the key can run more than its limit).
 *
 * Round trips: a request costs one at admission (gkAdmit: block, nonce, rate, slot, quota) and, with a
 * concurrency limit, one at release. The address block that the header stage checks before the body is read is
 * answered from memory: the blocks this daemon learnt from its own scripts' answers and those every daemon
 * publishes (channel <prefix>blocks) when it blocks an address. gkAdmit checks the block in Redis again, so a
 * block whose message was lost (a reconnect) still refuses every signed request; what it costs then is one
 * body read per daemon, until that daemon's first answer from Redis about the address.
 */
export class RedisGateState implements GateState {
  readonly describe: string;
  private readonly redis: Redis & Scripted;
  private readonly clock?: () => number;
  private readonly p: string;
  /** Slot ids this daemon holds, per key (renewed by the heartbeat). */
  private readonly held = new Map<string, string[]>();
  private readonly owner = `${process.pid}.${randomBytes(4).toString('hex')}`;
  private seq = 0;
  private heartbeat?: NodeJS.Timeout;
  private errors = 0;
  private lastError?: string;
  /** Whether the last command failed: a Redis that hangs stays "connected" while every command times out. */
  private failing = false;
  /** Blocked addresses known here -> end of the block on this daemon's clock (see the class comment). */
  private readonly blocks = new Map<string, number>();
  /** Hears the blocks other daemons set (a subscribed connection can send nothing else). */
  private readonly listener: Redis;

  constructor(private readonly options: RedisStateOptions) {
    this.describe = options.describe;
    this.clock = options.clock;
    this.p = options.prefix;
    const redis = new Redis(options.connect, {
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.timeoutMs,
      connectTimeout: Math.max(options.timeoutMs, 1000),
      retryStrategy: (times) => Math.min(50 * times, 500),
      // Refusing, not waiting, is the policy while Redis is away: no ready check queueing commands either.
      enableReadyCheck: true,
    });
    for (const [name, def] of Object.entries(SCRIPTS)) redis.defineCommand(name, def);
    redis.on('error', (err: Error) => {
      this.lastError = err.message;
    });
    redis.on('ready', () => {
      this.failing = false;
    });
    this.redis = redis as Redis & Scripted;
    // ioredis subscribes again after each reconnect; a message lost meanwhile is covered by gkAdmit's own check.
    this.listener = redis.duplicate({ enableOfflineQueue: true });
    this.listener.on('error', () => {});
    this.listener.on('message', (_channel: string, message: string) => {
      const [ip, ms] = message.split('\n');
      this.learnBlock(ip!, Number(ms));
    });
    this.listener.subscribe(this.k('blocks')).catch(() => {});
  }

  /** Resolves once connected, or after `boundMs` (requests are refused until then; nothing waits for it). */
  async whenUp(boundMs: number): Promise<boolean> {
    if (this.redis.status === 'ready') return true;
    return new Promise<boolean>((resolve) => {
      const done = (up: boolean) => {
        clearTimeout(timer);
        this.redis.off('ready', onReady);
        resolve(up);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), boundMs);
      this.redis.on('ready', onReady);
    });
  }

  async recordNonce(keyId: string, nonce: string, ttlMs: number, share: number): Promise<NonceResult> {
    return (await this.run('gkNonce', this.k('n', keyId), this.k('nonces'), nonce, `${keyId}\n${nonce}`, ttlMs, share, this.options.nonceCapacity, this.now())) as NonceResult;
  }

  async forgetNonce(keyId: string, nonce: string): Promise<void> {
    await this.run('gkForget', this.k('n', keyId), this.k('nonces'), nonce, `${keyId}\n${nonce}`);
  }

  async consumeRate(keyId: string, rate: number, burst: number): Promise<LimitOutcome> {
    const [allowed, remaining, resetMs] = (await this.run('gkRate', this.k('r', keyId), rate, burst, this.now())) as number[];
    return { allowed: allowed === 1, limit: burst, remaining: remaining!, resetMs: resetMs! };
  }

  async consumeQuota(keyId: string, daily: number, now: number): Promise<LimitOutcome> {
    const resetMs = msUntilUtcMidnight(now);
    // Kept a day past its own, so that a daemon whose clock is a little behind still finds yesterday's count.
    const [allowed, used] = (await this.run('gkQuota', this.k('q', utcDay(now), keyId), daily, resetMs + 86_400_000)) as number[];
    return quotaOutcome(allowed === 1, daily, used!, resetMs);
  }

  async recordAuthFailure(ip: string): Promise<number> {
    const { limit, windowSec, blockSec } = this.options.authFailures;
    const blocked = (await this.run('gkFailure', this.k('f', ip), limit, windowSec * 1000, blockSec * 1000, this.now(), this.k('blocks'), ip)) as number;
    this.learnBlock(ip, blocked);
    return blocked;
  }

  /** From memory, no round trip (see the class comment); blockedInRedis asks Redis. */
  authBlockedFor(ip: string): number {
    const until = this.blocks.get(ip);
    if (until === undefined) return 0;
    const left = until - this.localNow();
    if (left > 0) return Math.ceil(left);
    this.blocks.delete(ip);
    return 0;
  }

  /** What Redis holds for an address (doctor's round trip, tests). */
  async blockedInRedis(ip: string): Promise<number> {
    return (await this.run('gkBlocked', this.k('f', ip), this.now())) as number;
  }

  async admit(a: Admission): Promise<AdmissionResult> {
    const { keyId } = a;
    const slot = a.concurrency === null ? '' : `${this.owner}.${++this.seq}`;
    const resetMs = msUntilUtcMidnight(a.now);
    const [what, x, y, used] = (await this.run('gkAdmit',
      this.k('f', a.ip), this.k('n', keyId), this.k('nonces'), this.k('r', keyId), this.k('s', keyId), this.k('q', utcDay(a.now), keyId),
      this.now(), a.nonce, `${keyId}\n${a.nonce}`, a.ttlMs, a.nonceShare, this.options.nonceCapacity,
      a.rate?.rate ?? '', a.rate?.burst ?? '', a.concurrency ?? '', slot, this.options.leaseMs,
      // Kept a day past its own, as in consumeQuota.
      a.daily ?? '', resetMs + 86_400_000)) as [string, number?, number?, number?];
    if (what === 'blocked') {
      this.learnBlock(a.ip, x!);
      return { outcome: 'blocked', blockedMs: x! };
    }
    if (what === 'replayed' || what === 'key_full' || what === 'full') return { outcome: what };
    const rate: LimitOutcome | undefined = a.rate ? { allowed: what !== 'rate', limit: a.rate.burst, remaining: x!, resetMs: y! } : undefined;
    const quota: LimitOutcome | undefined = a.daily === null || what === 'rate' || what === 'slot' ? undefined
      : quotaOutcome(what !== 'quota', a.daily, used!, resetMs);
    if (what === 'ok' && slot) this.holdSlot(keyId, slot);
    const outcome = what === 'ok' ? 'ok' : what === 'rate' ? 'rate_limited' : what === 'slot' ? 'concurrency_limited' : 'quota_exhausted';
    return { outcome, rate, quota };
  }

  async acquireSlot(keyId: string, max: number): Promise<boolean> {
    const id = `${this.owner}.${++this.seq}`;
    const taken = (await this.run('gkAcquire', this.k('s', keyId), max, id, this.options.leaseMs, this.now())) === 1;
    if (taken) this.holdSlot(keyId, id);
    return taken;
  }

  /** A slot taken in Redis: released by releaseSlot, renewed by the heartbeat meanwhile. */
  private holdSlot(keyId: string, id: string): void {
    const ids = this.held.get(keyId);
    if (ids) ids.push(id);
    else this.held.set(keyId, [id]);
    this.heartbeat ??= setInterval(() => void this.renew(), Math.max(100, Math.floor(this.options.leaseMs / 3))).unref();
  }

  private learnBlock(ip: string, ms: number): void {
    if (!(ms > 0)) return;
    if (this.blocks.size >= KNOWN_BLOCKS_MAX) {
      const now = this.localNow();
      for (const [known, until] of this.blocks) if (until <= now) this.blocks.delete(known);
      if (this.blocks.size >= KNOWN_BLOCKS_MAX) this.blocks.clear();
    }
    this.blocks.set(ip, this.localNow() + ms);
  }

  async releaseSlot(keyId: string): Promise<void> {
    const ids = this.held.get(keyId);
    const id = ids?.pop();
    if (id === undefined) return;
    if (ids!.length === 0) this.held.delete(keyId);
    // If Redis is away now, the lease frees the slot.
    await this.redis.zrem(this.k('s', keyId), id).catch((err: unknown) => this.failed(err));
  }

  health(): StateHealth {
    const connected = this.redis.status === 'ready';
    const up = connected && !this.failing;
    const why = !connected ? `not connected (${this.redis.status})${this.lastError ? `: ${this.lastError}` : ''}` : this.lastError ?? 'commands failing';
    return { backend: 'redis', up, errors: this.errors, ...(up ? {} : { reason: `gate state ${this.describe} unavailable: ${why}` }) };
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    // Slots still held (a drain that timed out) go back now rather than at the end of their lease.
    const held = [...this.held];
    this.held.clear();
    if (this.redis.status === 'ready') {
      await Promise.all(held.map(([keyId, ids]) => this.redis.zrem(this.k('s', keyId), ...ids).catch(() => {})));
      await this.redis.quit().catch(() => {});
    }
    this.redis.disconnect();
    this.listener.disconnect();
  }

  /** Slot ids held in Redis now for a key (for tests and diagnosis): id -> lease end (ms). */
  async slots(keyId: string): Promise<Map<string, number>> {
    const flat = await this.redis.zrange(this.k('s', keyId), 0, -1, 'WITHSCORES');
    const out = new Map<string, number>();
    for (let i = 0; i < flat.length; i += 2) out.set(flat[i]!, Number(flat[i + 1]));
    return out;
  }

  /** The heartbeat: extends the lease of every slot this daemon holds, one script per key. */
  private async renew(): Promise<void> {
    if (this.held.size === 0) {
      clearInterval(this.heartbeat);
      this.heartbeat = undefined;
      return;
    }
    await Promise.all([...this.held].map(([keyId, ids]) => this.run('gkRenew', this.k('s', keyId), this.options.leaseMs, this.now(), ...ids).catch(() => {})));
  }

  private k(...parts: string[]): string {
    return this.p + parts.join(':');
  }

  private now(): number | string {
    return this.clock ? this.clock() : '';
  }

  private localNow(): number {
    return this.clock ? this.clock() : Date.now();
  }

  private async run(name: ScriptName, ...args: Array<string | number>): Promise<unknown> {
    try {
      const result = await this.redis[name](...args);
      this.failing = false;
      return result;
    } catch (err) {
      throw this.failed(err);
    }
  }

  private failed(err: unknown): StateUnavailableError {
    this.errors++;
    this.failing = true;
    this.lastError = (err as Error).message;
    return new StateUnavailableError(`the gate state ${this.describe} did not answer: ${this.lastError}`, { cause: err });
  }
}

/** A daily quota's answer from gkQuota's or gkAdmit's count: nothing remains once it refuses. */
function quotaOutcome(allowed: boolean, daily: number, used: number, resetMs: number): LimitOutcome {
  return allowed ? { allowed: true, limit: daily, remaining: daily - used, resetMs } : { allowed: false, limit: daily, remaining: 0, resetMs };
}
