import { parseModelSpec, resultsUrl, type ImageResult, type TaskView } from '@visionq/api';
import { ResultStore } from './result.store';
import type { TaskRecord } from './task.record';

/** `GET /tasks/:id` (and every event's data) for a stored task. */
export function taskView(task: TaskRecord, results?: ImageResult[]): TaskView {
  // A task stores the ref it was resolved to at submit; tasks from before versions stored a bare name.
  const { name, version } = parseModelSpec(task.model);
  return {
    task_id: task.id,
    status: task.status,
    model: name,
    ...(version === undefined ? {} : { model_version: version }),
    progress: { total: task.total, done: task.done, succeeded: task.succeeded, failed: task.failed },
    ...(task.source === undefined ? {} : { source: task.source, listing_complete: task.listed }),
    created_at: task.createdAt,
    started_at: task.startedAt ?? null,
    finished_at: task.finishedAt ?? null,
    ...(task.deadline === undefined ? {} : { deadline: task.deadline }),
    ...(task.error ? { error: task.error } : {}),
    ...(task.failedChunks ? { failed_chunks: task.failedChunks } : {}),
    ...(task.failedListing ? { failed_listing: { page: task.failedListing.page, attempts: task.failedListing.attempts, error: task.failedListing.error, failed_at: task.failedListing.failed_at } } : {}),
    retries: task.retries,
    ...(task.callbackUrl === undefined
      ? {}
      : { callback: { url: task.callbackUrl, events: task.callbackEvents ?? ['ended'], ...(task.callback ?? { state: 'pending' as const, attempts: [] }) } }),
    ...(task.metadata === undefined ? {} : { metadata: task.metadata }),
    ...(results ? { results } : {}),
    results_url: resultsUrl(task.id),
    output: ResultStore.folderUri(task),
  };
}
