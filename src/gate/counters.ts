import { msUntilUtcMidnight, utcDay, type LimitOutcome } from './state.js';

/** Concurrency slots held per key: in memory for every backend, since a restart ends every request in flight. */
export class Slots {
  private readonly held = new Map<string, number>();

  acquire(keyId: string, max: number): boolean {
    const held = this.held.get(keyId) ?? 0;
    if (held >= max) return false;
    this.held.set(keyId, held + 1);
    return true;
  }

  release(keyId: string): void {
    const held = this.held.get(keyId) ?? 0;
    if (held <= 1) this.held.delete(keyId);
    else this.held.set(keyId, held - 1);
  }
}

/** The GateState slot methods over Slots, for the backends of one process (memory, SQLite). */
export abstract class ProcessSlots {
  private readonly slots = new Slots();

  async acquireSlot(keyId: string, max: number): Promise<boolean> {
    return this.slots.acquire(keyId, max);
  }

  async releaseSlot(keyId: string): Promise<void> {
    this.slots.release(keyId);
  }
}

/**
 * Requests counted per key for the current UTC day. `startDay` gives the counts a new day starts with (none in
 * memory; what the file holds for SQLite).
 */
export class DailyCounts {
  day = '';
  private counts = new Map<string, number>();

  constructor(private readonly startDay: (day: string) => Map<string, number> = () => new Map()) {}

  consume(keyId: string, daily: number, now: number): LimitOutcome {
    const day = utcDay(now);
    if (day !== this.day) {
      this.counts = this.startDay(day);
      this.day = day;
    }
    const used = this.counts.get(keyId) ?? 0;
    const resetMs = msUntilUtcMidnight(now);
    if (used >= daily) return { allowed: false, limit: daily, remaining: 0, resetMs };
    this.counts.set(keyId, used + 1);
    return { allowed: true, limit: daily, remaining: daily - used - 1, resetMs };
  }

  used(keyId: string): number {
    return this.counts.get(keyId) ?? 0;
  }
}
