/**
 * The Lua scripts behind the Redis gate state (redis-state.ts): each check-and-update runs as one script, so two
 * daemons can never both take the last token, slot or quota unit; gkAdmit runs all of a request's checks in one
 * script, so that a request costs one round trip at admission (and one at release, for a concurrency slot). ioredis sends them with EVALSHA and falls back to
 * EVAL after a Redis restart (NOSCRIPT).
 *
 * Time: every script takes `now` (ms) as an argument (the last, gkAdmit's first); an empty one means the Redis server's clock (TIME), the
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

/**
 * Each check-and-update as a Lua function, so that the one-step scripts below and gkAdmit (every check of an
 * admission in one round trip) run the same code.
 */
const CHECKS = `
local function record_nonce(keyset, allset, member, full_member, ttl, share, capacity, now)
  local held = live(keyset, now)
  if redis.call('ZSCORE', keyset, member) then return 'replayed' end
  if held >= share then return 'key_full' end
  if live(allset, now) >= capacity then return 'full' end
  add(keyset, now + ttl, member, ttl)
  add(allset, now + ttl, full_member, ttl)
  return 'ok'
end
local function forget_nonce(keyset, allset, member, full_member)
  redis.call('ZREM', keyset, member)
  redis.call('ZREM', allset, full_member)
end
local function take_token(key, rate, burst, now)
  local interval = 1000 / rate
  local tat = tonumber(redis.call('GET', key))
  local from = now
  if tat and tat > now then from = tat end
  local nxt = from + interval
  local debt = nxt - now
  local capacity = burst * interval
  if debt > capacity + 1e-6 then
    return {0, 0, math.max(1, math.ceil(debt - capacity))}
  end
  redis.call('SET', key, string.format('%.17g', nxt), 'PX', math.max(1, math.ceil(debt)))
  return {1, math.floor((capacity - debt) / interval + 1e-9), math.ceil(debt)}
end
local function count_quota(key, daily, keep)
  local used = tonumber(redis.call('GET', key) or '0')
  if used >= daily then return {0, used} end
  used = redis.call('INCR', key)
  if used == 1 then redis.call('PEXPIRE', key, keep) end
  return {1, used}
end
local function take_slot(key, max, id, lease, now)
  if live(key, now) >= max then return 0 end
  add(key, now + lease, id, lease)
  return 1
end
local function blocked_for(key, now)
  local b = tonumber(redis.call('HGET', key, 'b'))
  if not b or b == 0 then return 0 end
  return math.max(0, math.ceil(b - now))
end
`;

const LIB = `${NOW}${ZSETS}${CHECKS}`;

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
    lua: `${LIB}
return record_nonce(KEYS[1], KEYS[2], ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), clock(ARGV[6]))
`,
  },
  /** KEYS: the key's nonce set, the set of every nonce. ARGV: nonce, "keyId\nnonce". */
  gkForget: {
    numberOfKeys: 2,
    lua: `${LIB}
forget_nonce(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
return 1
`,
  },
  /**
   * GCRA (token-bucket.ts). KEYS: the key's TAT. ARGV: rate/s, burst, now. Returns {allowed 0|1, remaining, resetMs}.
   * A refused request writes nothing.
   */
  gkRate: {
    numberOfKeys: 1,
    lua: `${LIB}
return take_token(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), clock(ARGV[3]))
`,
  },
  /**
   * KEYS: the key's count for one UTC day. ARGV: daily, keepMs (how long Redis keeps the count). Returns
   * {allowed 0|1, used after this request}. The day is in the key's name, so a new day starts at 0.
   */
  gkQuota: {
    numberOfKeys: 1,
    lua: `${LIB}
return count_quota(KEYS[1], tonumber(ARGV[1]), ARGV[2])
`,
  },
  /**
   * countFailure of auth-failures.ts. KEYS: the address's row (a hash: c count, w window end, b blocked until).
   * ARGV: limit, windowMs, blockMs, now, channel, address. Returns ms the address is now blocked for; a block set
   * or extended is published on the channel (address and ms, a newline between), so that every daemon refuses the
   * address before reading its next body.
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
local left = math.max(0, math.ceil(blocked - now))
if count > limit then redis.call('PUBLISH', ARGV[5], ARGV[6] .. '\\n' .. left) end
return left
`,
  },
  /** KEYS: the address's row. ARGV: now. Returns ms the address is still blocked for. */
  gkBlocked: {
    numberOfKeys: 1,
    lua: `${LIB}
return blocked_for(KEYS[1], clock(ARGV[1]))
`,
  },
  /**
   * Concurrency slots: a sorted set of slot id -> lease end. Slots whose lease ended (their daemon died or lost
   * Redis for longer than the lease) are dropped before counting. KEYS: the key's slots. ARGV: max, slot id,
   * leaseMs, now. Returns 1 when taken.
   */
  gkAcquire: {
    numberOfKeys: 1,
    lua: `${LIB}
return take_slot(KEYS[1], tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), clock(ARGV[4]))
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
  /**
   * A whole admission in one round trip (GateState.admit): the address block, then the nonce, the rate, a
   * concurrency slot and the daily quota, in the gate's order and with the one-step scripts' arithmetic. A request
   * refused after its nonce forgets it (and gives back the slot it took); the token it took stays spent.
   * KEYS: the address's failure row, the key's nonce set, the set of every nonce, the key's TAT, its slots, its
   * count for the day. ARGV: now, nonce, "keyId\nnonce", ttlMs, share, capacity, rate ('' for none), burst,
   * max slots ('' for none), slot id, leaseMs, daily ('' for none), keepMs.
   * Returns {what, a, b, c}: {'blocked', ms}; {'replayed' | 'key_full' | 'full'}; or
   * {'ok' | 'rate' | 'slot' | 'quota', rate remaining, rate resetMs, quota used}.
   */
  gkAdmit: {
    numberOfKeys: 6,
    lua: `${LIB}
local now = clock(ARGV[1])
local blocked = blocked_for(KEYS[1], now)
if blocked > 0 then return {'blocked', blocked} end
local seen = record_nonce(KEYS[2], KEYS[3], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), now)
if seen ~= 'ok' then return {seen} end
local rate = {1, 0, 0}
if ARGV[7] ~= '' then
  rate = take_token(KEYS[4], tonumber(ARGV[7]), tonumber(ARGV[8]), now)
  if rate[1] == 0 then
    forget_nonce(KEYS[2], KEYS[3], ARGV[2], ARGV[3])
    return {'rate', rate[2], rate[3], 0}
  end
end
local slotted = ARGV[9] ~= ''
if slotted and take_slot(KEYS[5], tonumber(ARGV[9]), ARGV[10], tonumber(ARGV[11]), now) == 0 then
  forget_nonce(KEYS[2], KEYS[3], ARGV[2], ARGV[3])
  return {'slot', rate[2], rate[3], 0}
end
local quota = {1, 0}
if ARGV[12] ~= '' then
  quota = count_quota(KEYS[6], tonumber(ARGV[12]), ARGV[13])
  if quota[1] == 0 then
    forget_nonce(KEYS[2], KEYS[3], ARGV[2], ARGV[3])
    if slotted then redis.call('ZREM', KEYS[5], ARGV[10]) end
    return {'quota', rate[2], rate[3], quota[2]}
  end
end
return {'ok', rate[2], rate[3], quota[2]}
`,
  },
} satisfies Record<string, ScriptDef>;

export type ScriptName = keyof typeof SCRIPTS;
