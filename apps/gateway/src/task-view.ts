import type { ImageResult } from '@visionq/inference';
import { ResultStore, type TaskRecord } from '@visionq/tasks';

/** `GET /tasks/:id` as DESIGN.md writes it. */
export function taskView(task: TaskRecord, results?: ImageResult[]): Record<string, unknown> {
  return {
    task_id: task.id,
    status: task.status,
    model: task.model,
    progress: { total: task.total, done: task.done, succeeded: task.succeeded, failed: task.failed },
    ...(task.source === undefined ? {} : { source: task.source, listing_complete: task.listed }),
    created_at: task.createdAt,
    started_at: task.startedAt ?? null,
    finished_at: task.finishedAt ?? null,
    ...(task.error ? { error: task.error } : {}),
    ...(task.metadata === undefined ? {} : { metadata: task.metadata }),
    ...(results ? { results } : {}),
    results_url: `/tasks/${task.id}/results`,
    output: ResultStore.folderUri(task),
  };
}
