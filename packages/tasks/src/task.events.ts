import type { TaskEvent, TaskEventType, TaskStatus } from '@visionq/api';
import type { KeyNamespace } from './key.namespace';
import type { RedisConnection } from './redis.connection';

export type StreamEntry = [id: string, fields: string[]];

/** Reads the event logs the TaskStore appends to; following them live is TaskEventHub's. */
export class TaskEvents {
  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: KeyNamespace,
  ) {}

  /** The task's events after `after` (exclusive), oldest first. Empty for an unknown or expired task. */
  async replay(taskId: string, after?: string): Promise<TaskEvent[]> {
    const entries = (await this.redis.xrange(this.keys.events(taskId), after === undefined ? '-' : `(${after}`, '+')) as StreamEntry[];
    return entries.map((entry) => toTaskEvent(taskId, entry));
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
    ...(f.failed_chunk === undefined ? {} : { failed_chunk: Number(f.failed_chunk) }),
    ...(f.failed_page === undefined ? {} : { failed_page: Number(f.failed_page) }),
    ...(f.round === undefined ? {} : { round: Number(f.round) }),
    ...(f.error === undefined ? {} : { error: JSON.parse(f.error) }),
  };
}
