import type { KeyNamespace } from './key.namespace';
import type { RedisConnection } from './redis.connection';

/** What a live worker tells the others about itself. */
export interface WorkerInfo {
  id: string;
  hostname: string;
  pid: number;
  /** The model versions it serves, `NAME@VERSION`. */
  models: string[];
  /** Execution provider each version runs on, e.g. `{ "vgg16@1": "cuda" }`. */
  providers: Record<string, string>;
  startedAt: string;
}

// Heartbeats are one sorted set (announcement → when it expires, in Redis's clock, so hosts'
// clocks need not agree): one key, so it works on a Redis Cluster as on one server.
/** KEYS[1]: the heartbeats; ARGV: announcement, ttl ms. Drops expired ones, then (re)announces. */
const BEAT = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

/** KEYS[1]: the heartbeats. Announcements not yet expired. */
const LIVE = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
`;

/**
 * Worker heartbeats: each live worker refreshes its announcement, which expires after
 * `ttlMs`, so a worker that dies drops out by itself. Readiness ("at least one worker")
 * reads these.
 */
export class WorkerRegistry {
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<unknown> = Promise.resolve();
  /** This process's announcements, by worker id. */
  private readonly announced = new Map<string, string>();

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: KeyNamespace,
    private readonly ttlMs = 15_000,
  ) {}

  /** Announces `info` now and every third of the TTL until `stop()`. */
  async start(info: WorkerInfo, onError: (err: unknown) => void): Promise<void> {
    this.announced.set(info.id, JSON.stringify(info));
    const beat = () => (this.beating = this.redis.eval(BEAT, 1, this.keys.workers(), this.announced.get(info.id)!, this.ttlMs));
    await beat();
    this.timer = setInterval(() => beat().catch(onError), Math.floor(this.ttlMs / 3));
    this.timer.unref();
  }

  /** Announces what changed (the versions served) at once, in place of the announcement before. */
  async update(info: WorkerInfo): Promise<void> {
    const before = this.announced.get(info.id);
    const announcement = JSON.stringify(info);
    this.announced.set(info.id, announcement);
    await this.beating.catch(() => undefined);
    this.beating = this.redis.eval(BEAT, 1, this.keys.workers(), announcement, this.ttlMs);
    await this.beating;
    if (before !== undefined && before !== announcement) await this.redis.zrem(this.keys.workers(), before);
  }

  /** Stops announcing and withdraws at once. */
  async stop(id: string): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    // A beat in flight must not bring the announcement back; its failure was reported by the interval already.
    await this.beating.catch(() => undefined);
    const announcement = this.announced.get(id);
    if (announcement === undefined) return;
    this.announced.delete(id);
    await this.redis.zrem(this.keys.workers(), announcement);
  }

  async live(): Promise<WorkerInfo[]> {
    const announcements = (await this.redis.eval(LIVE, 1, this.keys.workers())) as string[];
    return announcements.map((a) => JSON.parse(a) as WorkerInfo);
  }
}
