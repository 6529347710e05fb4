import type { Redis } from 'ioredis';
import type { TaskEvent, TaskEventType, TaskStatus } from '@visionq/api';
import type { KeyNamespace } from './key.namespace';

/** An entry of the stream of ended tasks. */
export interface TaskEnding {
  id: string;
  task_id: string;
  status: TaskStatus;
  at: string;
}

export interface FollowOptions {
  /** Resume after this entry id (exclusive); default: from the first entry kept. */
  after?: string;
  /** Stops following (the iterator returns) when aborted. */
  signal?: AbortSignal;
  /** Longest one blocking read waits before it looks at `signal` again. Default 5 s. */
  blockMs?: number;
}

export type StreamEntry = [id: string, fields: string[]];

/**
 * Reads the event logs the TaskStore appends to: a task's own (replay from an entry id,
 * then follow live until `ended`), and the one stream of every task's ending. Following
 * blocks a connection, so each follower gets a connection of its own, closed when it stops.
 */
export class TaskEvents {
  constructor(
    private readonly redis: Redis,
    private readonly keys: KeyNamespace,
  ) {}

  /** The task's events after `after` (exclusive), oldest first. Empty for an unknown or expired task. */
  async replay(taskId: string, after?: string): Promise<TaskEvent[]> {
    const entries = (await this.redis.xrange(this.keys.events(taskId), after === undefined ? '-' : `(${after}`, '+')) as StreamEntry[];
    return entries.map((entry) => toTaskEvent(taskId, entry));
  }

  /** Replays after `options.after`, then yields each new event as it is written; returns after `ended`. */
  async *follow(taskId: string, options: FollowOptions = {}): AsyncGenerator<TaskEvent> {
    for await (const entry of this.read(this.keys.events(taskId), options)) {
      const event = toTaskEvent(taskId, entry);
      yield event;
      if (event.type === 'ended') return;
    }
  }

  /** Every task's ending after `options.after`, then live, until `options.signal` aborts. */
  async *endings(options: FollowOptions = {}): AsyncGenerator<TaskEnding> {
    for await (const [id, fields] of this.read(this.keys.ended(), options)) {
      const f = fieldMap(fields);
      yield { id, task_id: f.task_id!, status: f.status as TaskStatus, at: f.at! };
    }
  }

  private async *read(key: string, options: FollowOptions): AsyncGenerator<StreamEntry> {
    const { signal, blockMs = 5_000 } = options;
    let last = options.after ?? '0';
    const connection = this.redis.duplicate();
    const stop = () => connection.disconnect();
    signal?.addEventListener('abort', stop, { once: true });
    try {
      while (!signal?.aborted) {
        let reply: [string, StreamEntry[]][] | null;
        try {
          reply = (await connection.xread('COUNT', 100, 'BLOCK', blockMs, 'STREAMS', key, last)) as [string, StreamEntry[]][] | null;
        } catch (err) {
          if (signal?.aborted) return; // the disconnect above ended the blocked read
          throw err;
        }
        for (const entry of reply?.[0]?.[1] ?? []) {
          last = entry[0];
          yield entry;
        }
      }
    } finally {
      signal?.removeEventListener('abort', stop);
      connection.disconnect();
    }
  }
}

function fieldMap(fields: string[]): Record<string, string> {
  const map: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) map[fields[i]!] = fields[i + 1]!;
  return map;
}

export function toTaskEvent(taskId: string, [id, fields]: StreamEntry): TaskEvent {
  const f = fieldMap(fields);
  return {
    id,
    type: f.type as TaskEventType,
    task_id: taskId,
    status: f.status as TaskStatus,
    progress: { total: Number(f.total), done: Number(f.done), succeeded: Number(f.succeeded), failed: Number(f.failed) },
    at: f.at!,
    ...(f.chunk === undefined ? {} : { chunk: Number(f.chunk) }),
    ...(f.page === undefined ? {} : { page: Number(f.page) }),
    ...(f.error === undefined ? {} : { error: JSON.parse(f.error) }),
  };
}
