import type { KeyNamespace } from './key.namespace';
import type { RedisConnection } from './redis.connection';

export type IdempotencyClaim =
  /** First use of the key: go on and create `taskId`. */
  | { outcome: 'new' }
  /** The same request came before: answer with its task. */
  | { outcome: 'replay'; taskId: string }
  /** The key was used for a different request. */
  | { outcome: 'conflict'; taskId: string };

/** KEYS: the key; ARGV: task id. */
const RELEASE = `
local entry = redis.call('GET', KEYS[1])
if entry and cjson.decode(entry).task_id == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * `Idempotency-Key` → task, for `retentionSeconds`. The claim is atomic (SET NX), so two
 * concurrent submits under one key make one task.
 */
export class IdempotencyStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: KeyNamespace,
    private readonly retentionSeconds: number,
  ) {}

  /** Claims `key` for the request whose canonical hash is `requestHash`, to become task `taskId`. */
  async claim(key: string, requestHash: string, taskId: string): Promise<IdempotencyClaim> {
    const entry = JSON.stringify({ hash: requestHash, task_id: taskId });
    const set = await this.redis.set(this.keys.idempotency(key), entry, 'EX', this.retentionSeconds, 'NX');
    if (set === 'OK') return { outcome: 'new' };
    const existing = await this.redis.get(this.keys.idempotency(key));
    if (existing === null) return this.claim(key, requestHash, taskId); // expired in between
    const { hash, task_id } = JSON.parse(existing) as { hash: string; task_id: string };
    return hash === requestHash ? { outcome: 'replay', taskId: task_id } : { outcome: 'conflict', taskId: task_id };
  }

  /** Frees a key whose task could not be created, so a retry can succeed. */
  async release(key: string, taskId: string): Promise<void> {
    // Compare and delete in one step: the key may have been claimed again meanwhile.
    await this.redis.eval(RELEASE, 1, this.keys.idempotency(key), taskId);
  }
}
