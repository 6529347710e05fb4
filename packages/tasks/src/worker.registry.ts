import type { Redis } from 'ioredis';
import type { KeyNamespace } from './key.namespace';

/** What a live worker tells the others about itself. */
export interface WorkerInfo {
  id: string;
  hostname: string;
  pid: number;
  models: string[];
  /** Execution provider each model runs on, e.g. `{ "vgg16": "cuda" }`. */
  providers: Record<string, string>;
  startedAt: string;
}

/**
 * Worker heartbeats: each live worker refreshes a key that expires after `ttlMs`, so a
 * worker that dies drops out by itself. Readiness ("at least one worker") reads these.
 */
export class WorkerRegistry {
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly redis: Redis,
    private readonly keys: KeyNamespace,
    private readonly ttlMs = 15_000,
  ) {}

  /** Announces `info` now and every third of the TTL until `stop()`. */
  async start(info: WorkerInfo, onError: (err: unknown) => void): Promise<void> {
    const beat = () => (this.beating = this.redis.set(this.keys.worker(info.id), JSON.stringify(info), 'PX', this.ttlMs));
    await beat();
    this.timer = setInterval(() => beat().catch(onError), Math.floor(this.ttlMs / 3));
    this.timer.unref();
  }

  /** Stops announcing and withdraws at once. */
  async stop(id: string): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    // A beat in flight must not bring the key back; its failure was reported by the interval already.
    await this.beating.catch(() => undefined);
    await this.redis.del(this.keys.worker(id));
  }

  async live(): Promise<WorkerInfo[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = await this.redis.scan(cursor, 'MATCH', this.keys.workers(), 'COUNT', 1000);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
    if (keys.length === 0) return [];
    const values = await this.redis.mget(keys);
    return values.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as WorkerInfo);
  }
}
