/**
 * The Lua scripts behind the Redis gate state (redis-state.ts): each check-and-update runs as one script, so two
 * daemons can never both take the last token, slot or quota unit. ioredis sends them with EVALSHA and falls back to
 * EVAL after a Redis restart (NOSCRIPT).
 *
 * Time: every script takes `now` (ms) as its last argument; an empty one means the Redis server's clock (TIME), the
 * one clock all daemons share, so limits do not depend on how well the daemons' clocks agree. Tests pass their own.
 * Expiry by Redis (PX/PEXPIRE) only frees memory: every decision compares stored times with `now`, so a key that
 * Redis has not dropped yet never counts for longer than it should.
 *
 * The arithmetic is token-bucket.ts's and auth-failures.ts's, written again in Lua (the contract tests in
 * test/gate/state-contract.ts hold all backends to the same answers). Numbers are returned as integers (Redis
 * truncates Lua numbers) and timestamps stored with %.17g, so a fractional TAT survives a round trip.
 */
const NOW = `
local function clock(arg)
  local n = tonumber(arg)
  if n then return n end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/** Sorted sets scored by expiry (nonces, slots): members still live, and adding one that lives until `score`. */
const ZSETS = `
local function live(key, now)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  return redis.call('ZCARD', key)
end
local function add(key, score, member, ttl)
  redis.call('ZADD', key, string.format('%.17g', score), member)
  redis.call('PEXPIRE', key, ttl)
end
`;

export interface ScriptDef {
  numberOfKeys: number;
  lua: string;
}

export const SCRIPTS = {
  /**
   * KEYS: the key's nonce set, the set of every nonce. ARGV: nonce, "keyId\nnonce", ttlMs, share, capacity, now.
   * Returns 'ok' | 'replayed' | 'key_full' | 'full' (as GateState.recordNonce). Sorted sets scored by expiry: the
   * expired head is cut before counting, so a live nonce is never forgotten early and the counts are exact.
   */
  gkNonce: {
    numberOfKeys: 2,
    lua: `${NOW}${ZSETS}
local now = clock(ARGV[6])
local ttl = tonumber(ARGV[3])
local held = live(KEYS[1], now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 'replayed' end
if held >= tonumber(ARGV[4]) then return 'key_full' end
if live(KEYS[2], now) >= tonumber(ARGV[5]) then return 'full' end
add(KEYS[1], now + ttl, ARGV[1], ttl)
add(KEYS[2], now + ttl, ARGV[2], ttl)
return 'ok'
`,
  },
  /** KEYS: the key's nonce set, the set of every nonce. ARGV: nonce, "keyId\nnonce". */
  gkForget: {
    numberOfKeys: 2,
    lua: `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
`,
  },
  /**
   * GCRA (token-bucket.ts). KEYS: the key's TAT. ARGV: rate/s, burst, now. Returns {allowed 0|1, remaining, resetMs}.
   * A refused request writes nothing.
   */
  gkRate: {
    numberOfKeys: 1,
    lua: `${NOW}
local now = clock(ARGV[3])
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local interval = 1000 / rate
local tat = tonumber(redis.call('GET', KEYS[1]))
local from = now
if tat and tat > now then from = tat end
local nxt = from + interval
local debt = nxt - now
local capacity = burst * interval
if debt > capacity + 1e-6 then
  return {0, 0, math.max(1, math.ceil(debt - capacity))}
end
redis.call('SET', KEYS[1], string.format('%.17g', nxt), 'PX', math.max(1, math.ceil(debt)))
return {1, math.floor((capacity - debt) / interval + 1e-9), math.ceil(debt)}
`,
  },
  /**
   * KEYS: the key's count for one UTC day. ARGV: daily, keepMs (how long Redis keeps the count). Returns
   * {allowed 0|1, used after this request}. The day is in the key's name, so a new day starts at 0.
   */
  gkQuota: {
    numberOfKeys: 1,
    lua: `
local daily = tonumber(ARGV[1])
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= daily then return {0, used} end
used = redis.call('INCR', KEYS[1])
if used == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {1, used}
`,
  },
  /**
   * countFailure of auth-failures.ts. KEYS: the address's row (a hash: c count, w window end, b blocked until).
   * ARGV: limit, windowMs, blockMs, now. Returns ms the address is now blocked for.
   */
  gkFailure: {
    numberOfKeys: 1,
    lua: `${NOW}
local now = clock(ARGV[4])
local limit = tonumber(ARGV[1])
local row = redis.call('HMGET', KEYS[1], 'c', 'w', 'b')
local c, w, b = tonumber(row[1]), tonumber(row[2]), tonumber(row[3])
local fresh = (c == nil) or (w == nil) or (w <= now)
local count, windowEnd = 1, now + tonumber(ARGV[2])
if not fresh then count, windowEnd = c + 1, w end
local blocked = 0
if b and b > now then blocked = b end
if count > limit then blocked = math.max(blocked, now + tonumber(ARGV[3])) end
redis.call('HSET', KEYS[1], 'c', count, 'w', string.format('%.17g', windowEnd), 'b', string.format('%.17g', blocked))
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil(math.max(windowEnd, blocked) - now)))
return math.max(0, math.ceil(blocked - now))
`,
  },
  /** KEYS: the address's row. ARGV: now. Returns ms the address is still blocked for. */
  gkBlocked: {
    numberOfKeys: 1,
    lua: `${NOW}
local b = tonumber(redis.call('HGET', KEYS[1], 'b'))
if not b or b == 0 then return 0 end
return math.max(0, math.ceil(b - clock(ARGV[1])))
`,
  },
  /**
   * Concurrency slots: a sorted set of slot id -> lease end. Slots whose lease ended (their daemon died or lost
   * Redis for longer than the lease) are dropped before counting. KEYS: the key's slots. ARGV: max, slot id,
   * leaseMs, now. Returns 1 when taken.
   */
  gkAcquire: {
    numberOfKeys: 1,
    lua: `${NOW}${ZSETS}
local now = clock(ARGV[4])
local lease = tonumber(ARGV[3])
if live(KEYS[1], now) >= tonumber(ARGV[1]) then return 0 end
add(KEYS[1], now + lease, ARGV[2], lease)
return 1
`,
  },
  /** Extends the leases of slots still held (the heartbeat). KEYS: the key's slots. ARGV: leaseMs, now, slot ids... */
  gkRenew: {
    numberOfKeys: 1,
    lua: `${NOW}
local lease = tonumber(ARGV[1])
local until_ = string.format('%.17g', clock(ARGV[2]) + lease)
local renewed = 0
for i = 3, #ARGV do renewed = renewed + redis.call('ZADD', KEYS[1], 'XX', 'CH', until_, ARGV[i]) end
if renewed > 0 then redis.call('PEXPIRE', KEYS[1], lease) end
return renewed
`,
  },
} satisfies Record<string, ScriptDef>;

export type ScriptName = keyof typeof SCRIPTS;
