import type { TaskStatus } from './task.schema';
import type { TaskFailure, TaskProgress } from './task-view';

/**
 * `created`: the task was stored; `running`: its first chunk (or page) started;
 * `progress`: a chunk committed (or a `source` page was listed), with the new counts;
 * `ended`: its final status; `retried`: `POST /tasks/:id/retry` took its failed chunks back
 * into work (it ends again later). Each is written in the same atomic step as the change itself.
 */
export type TaskEventType = 'created' | 'running' | 'progress' | 'ended' | 'retried';

/** One entry of a task's event log. */
export interface TaskEvent {
  /** The log entry's id: resume after it (SSE `Last-Event-ID`). Ids grow with time. */
  id: string;
  type: TaskEventType;
  task_id: string;
  /** The status after the change. */
  status: TaskStatus;
  progress: TaskProgress;
  /** When the change happened (ISO 8601). */
  at: string;
  /** `progress` of a committed chunk: its index. */
  chunk?: number;
  /** `progress` of a listed `source` page: its index. */
  page?: number;
  /** `progress` of a chunk that used up its attempts: its index. */
  failed_chunk?: number;
  /** `progress` of a `source` page whose listing used up its attempts: its index. */
  failed_page?: number;
  /** `retried`: the retry's round (1 for the first). */
  round?: number;
  /** `ended` as `failed`: why. */
  error?: TaskFailure;
}
