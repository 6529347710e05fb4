import { resultsUrl, type ImageResult, type TaskView } from '@visionq/api';
import { ResultStore } from './result.store';
import type { TaskRecord } from './task.record';

/** `GET /tasks/:id` (and every event's data) for a stored task. */
export function taskView(task: TaskRecord, results?: ImageResult[]): TaskView {
  return {
    task_id: task.id,
    status: task.status,
    model: task.model,
    progress: { total: task.total, done: task.done, succeeded: task.succeeded, failed: task.failed },
    ...(task.source === undefined ? {} : { source: task.source, listing_complete: task.listed }),
    created_at: task.createdAt,
    started_at: task.startedAt ?? null,
    finished_at: task.finishedAt ?? null,
    ...(task.deadline === undefined ? {} : { deadline: task.deadline }),
    ...(task.error ? { error: task.error } : {}),
    // No task is retried and callbacks hear only `ended` until those features land.
    retries: 0,
    ...(task.callbackUrl === undefined ? {} : { callback: { url: task.callbackUrl, events: ['ended' as const], ...(task.callback ?? { state: 'pending' as const, attempts: [] }) } }),
    ...(task.metadata === undefined ? {} : { metadata: task.metadata }),
    ...(results ? { results } : {}),
    results_url: resultsUrl(task.id),
    output: ResultStore.folderUri(task),
  };
}
