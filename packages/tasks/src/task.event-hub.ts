import { randomUUID } from 'node:crypto';
import type { TaskEvent } from '@visionq/api';
import type { Logger } from '@visionq/observability';
import type { KeyNamespace } from './key.namespace';
import { duplicateConnection, type RedisConnection } from './redis.connection';
import { toTaskEvent, type StreamEntry } from './task.events';

interface Watcher {
  /** Last entry id this watcher has been given ('0': none yet). */
  last: string;
  deliver(event: TaskEvent): void;
}

/** How long one blocking read waits before it looks at its watchers again. */
const BLOCK_MS = 5_000;
/** Entries read per stream and round. */
const READ_COUNT = 100;
/** A wake stream outlives its last wake by this much: it is read within one round, and a hub that died leaves nothing behind. */
const WAKE_TTL_MS = 60_000;

/**
 * One Redis read loop per process for every live watcher of every task's event log:
 * however many clients follow a task (SSE), this gateway blocks one connection, reading
 * each watched stream from the oldest id one of its watchers still needs. A new watcher
 * wakes the blocked read so it gets its replay at once: the read also blocks on a wake
 * stream of this hub's own, and the new watcher appends to it. (Not CLIENT UNBLOCK: on a
 * Redis Cluster that would have to reach the very node holding the blocked connection.)
 */
export class TaskEventHub {
  private readonly streams = new Map<string, { taskId: string; watchers: Set<Watcher> }>();
  private connection?: RedisConnection;
  private readonly wakeKey: string;
  /** Last entry of the wake stream the loop has read. */
  private wakeLast = '0-0';
  private loop?: Promise<void>;
  private closed = false;
  /** Resumes the loop when it sleeps for want of watchers. */
  private idle?: () => void;

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: KeyNamespace,
    private readonly logger: Logger,
  ) {
    this.wakeKey = keys.hubWake(randomUUID());
  }

  /**
   * Calls `deliver` with each event of the task after `after` (its whole log when absent),
   * then each new one as it is written, until the returned function is called.
   */
  watch(taskId: string, after: string | undefined, deliver: (event: TaskEvent) => void): () => void {
    const key = this.keys.events(taskId);
    const watcher: Watcher = { last: after ?? '0', deliver };
    let stream = this.streams.get(key);
    if (!stream) this.streams.set(key, (stream = { taskId, watchers: new Set() }));
    stream.watchers.add(watcher);
    this.start();
    this.wake();
    return () => {
      stream!.watchers.delete(watcher);
      if (stream!.watchers.size === 0 && this.streams.get(key) === stream) this.streams.delete(key);
    };
  }

  /** Watchers right now, over all tasks. */
  get watchers(): number {
    let n = 0;
    for (const stream of this.streams.values()) n += stream.watchers.size;
    return n;
  }

  /** Stops the loop and drops its connection. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    this.idle?.();
    this.connection?.disconnect();
    await this.loop;
  }

  private start(): void {
    if (this.loop || this.closed) return;
    // Named, so CLIENT LIST shows each deployment's read loops.
    this.connection = duplicateConnection(this.redis, { connectionName: `${this.keys.prefix}:events`, maxRetriesPerRequest: null });
    this.connection.on('error', (err: Error) => this.logger.debug('event hub connection error', { error: err.message }));
    this.loop = this.run().catch((err: unknown) => {
      this.logger.error('event hub stopped', { error: (err as Error).message });
    });
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      if (this.streams.size === 0) {
        await new Promise<void>((resolve) => (this.idle = resolve));
        continue;
      }
      const keys = [...this.streams.keys()];
      const ids = keys.map((key) => oldest([...this.streams.get(key)!.watchers].map((w) => w.last)));
      let reply: [string, StreamEntry[]][] | null;
      try {
        reply = (await this.connection!.xread('COUNT', READ_COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', ...keys, this.wakeKey, ...ids, this.wakeLast)) as [string, StreamEntry[]][] | null;
      } catch (err) {
        if (this.closed) return;
        this.logger.warn('event hub read failed; retrying', { error: (err as Error).message });
        await new Promise((resolve) => setTimeout(resolve, 500));
        continue;
      }
      for (const [key, entries] of reply ?? []) {
        if (key === this.wakeKey) {
          this.wakeLast = entries[entries.length - 1]![0];
          continue;
        }
        const stream = this.streams.get(key);
        if (!stream) continue;
        for (const entry of entries) {
          const event = toTaskEvent(stream.taskId, entry);
          for (const watcher of stream.watchers) {
            if (compareIds(entry[0], watcher.last) <= 0) continue;
            watcher.last = entry[0];
            watcher.deliver(event);
          }
        }
      }
    }
  }

  private wake(): void {
    if (this.idle) {
      const resume = this.idle;
      this.idle = undefined;
      resume();
      return;
    }
    if (this.loop && !this.closed) {
      // Ends the blocked XREAD (or the next one, if it is not blocked yet), so the next round reads the new watcher's stream.
      this.redis
        .multi()
        .xadd(this.wakeKey, 'MAXLEN', '1', '*', 'wake', '1')
        .pexpire(this.wakeKey, WAKE_TTL_MS)
        .exec()
        .catch((err: Error) => this.logger.debug('event hub wake failed', { error: err.message }));
    }
  }
}

/** Redis stream ids ("ms-seq") in order. */
export function compareIds(a: string, b: string): number {
  const [am, as = '0'] = a.split('-');
  const [bm, bs = '0'] = b.split('-');
  return Number(am) - Number(bm) || Number(as) - Number(bs);
}

function oldest(ids: string[]): string {
  return ids.reduce((min, id) => (compareIds(id, min) < 0 ? id : min));
}
