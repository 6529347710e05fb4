import type { TaskView } from '@visionq/api';
import { formatColumns } from './result-table';

/** Exit status of a command that saw a task to its end: 0 when every image succeeded. */
export function exitStatusOf(view: TaskView): number {
  return view.status === 'succeeded' ? 0 : 1;
}

/** One task for a reader: its status, counts and times, and why it failed. */
export function formatTask(view: TaskView): string {
  const { total, done, succeeded, failed } = view.progress;
  const rows = [
    ['task', view.task_id],
    ['status', view.status],
    ['model', view.model],
    ['images', `${done}/${total} done: ${succeeded} succeeded, ${failed} failed`],
    ['created', view.created_at],
  ];
  if (view.finished_at) rows.push(['finished', `${view.finished_at} (${((Date.parse(view.finished_at) - Date.parse(view.created_at)) / 1000).toFixed(1)} s)`]);
  if (view.retries > 0) rows.push(['retries', String(view.retries)]);
  if (view.error) rows.push(['error', `${view.error.code}: ${view.error.message}`]);
  for (const chunk of view.failed_chunks ?? []) rows.push(['failed chunk', `#${chunk.index} (${chunk.images} images): ${chunk.error.code}`]);
  rows.push(['results', `visionq results ${view.task_id}`]);
  return formatColumns(rows.map(([name, value]) => [`${name}:`, value!]));
}

/** Tasks as a table, one row each. */
export function formatTaskList(views: TaskView[]): string {
  const rows = [['TASK', 'STATUS', 'MODEL', 'DONE', 'FAILED', 'CREATED']];
  for (const v of views) rows.push([v.task_id, v.status, v.model, `${v.progress.done}/${v.progress.total}`, String(v.progress.failed), v.created_at]);
  return formatColumns(rows);
}
