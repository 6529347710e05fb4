import { modelRef, type TaskView } from '@visionq/api';
import { h } from './dom';

/** A task's status as a badge, and its progress as a bar with the counts beside it. */
export function statusBadge(status: TaskView['status']): HTMLSpanElement {
  return h('span', { class: `status status-${status}` }, status);
}

export function progressText(view: Pick<TaskView, 'progress'>): string {
  const { total, done, failed } = view.progress;
  return `${done} of ${total} images done${failed > 0 ? `, ${failed} failed` : ''}`;
}

type Counts = Pick<TaskView['progress'], 'total' | 'done'>;

export function progressBar(progress: Counts, label: string): HTMLProgressElement {
  const bar = h('progress', { 'aria-label': label });
  showProgress(bar, progress);
  return bar;
}

export function showProgress(bar: HTMLProgressElement, { total, done }: Counts): void {
  // max 1 while nothing is known yet (a prefix still being listed), so the bar reads empty, not indeterminate.
  bar.max = Math.max(total, 1);
  bar.value = done;
}

/** The version a task runs on, `NAME@VERSION` (tasks from before versions show the name alone). */
export function modelOf(task: TaskView): string {
  return task.model_version === undefined ? task.model : modelRef(task.model, task.model_version);
}
