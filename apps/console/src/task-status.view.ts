import type { TaskView } from '@visionq/api';
import { h } from './dom';

/** A task's status as a badge, and its progress as a bar with the counts beside it. */
export function statusBadge(status: TaskView['status']): HTMLSpanElement {
  return h('span', { class: `status status-${status}` }, status);
}

export function progressText(view: TaskView): string {
  const { total, done, failed } = view.progress;
  return `${done} of ${total} images done${failed > 0 ? `, ${failed} failed` : ''}`;
}

export function progressBar(view: TaskView, label: string): HTMLProgressElement {
  // max 1 while nothing is known yet (a prefix still being listed), so the bar reads empty, not indeterminate.
  return h('progress', { max: Math.max(view.progress.total, 1), value: view.progress.done, 'aria-label': label });
}
