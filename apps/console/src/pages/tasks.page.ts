import { isTerminal, type TaskStatus, type TaskView } from '@visionq/api';
import { h, heading, shortTime } from '../dom';
import { errorMessage } from '../errors';
import type { Page } from '../page';
import { taskHref } from '../router';
import { modelOf, progressBar, progressText, statusBadge } from '../task-status.view';

const STATUSES: TaskStatus[] = ['queued', 'running', 'succeeded', 'completed_with_errors', 'failed', 'cancelled'];
const PAGE_SIZE = 20;
/**
 * Unended tasks of a page followed live, each over an events stream of its own: a browser
 * opens at most six HTTP/1.1 connections to one origin, and the page's own calls need some.
 */
const MAX_LIVE_ROWS = 4;

/** The tenant's tasks, newest first: a status filter, pages, live progress of the unended ones. */
export const tasksPage: Page = (view, { client, signal }) => {
  const filter = h('select', { id: 'status-filter' }, h('option', { value: '' }, 'all'), ...STATUSES.map((s) => h('option', { value: s }, s)));
  const body = h('tbody');
  const table = h('table', {}, h('caption', { class: 'visually-hidden' }, 'Tasks, newest first'), h('thead', {}, h('tr', {}, ...['Task', 'Status', 'Progress', 'Model', 'Created'].map((c) => h('th', { scope: 'col' }, c)))), body);
  const newer = h('button', { type: 'button' }, 'Newer');
  const older = h('button', { type: 'button' }, 'Older');
  const outcome = h('div');
  /** Cursors of the pages before the one shown, to go back. */
  const cursors: Array<string | undefined> = [];
  let cursor: string | undefined;
  let next: string | null = null;
  let rows = new AbortController();

  const load = async () => {
    rows.abort();
    rows = new AbortController();
    const live = AbortSignal.any([signal, rows.signal]);
    outcome.replaceChildren();
    try {
      const status = filter.value === '' ? undefined : (filter.value as TaskStatus);
      const page = await client.list({ limit: PAGE_SIZE, signal: live, ...(status ? { status } : {}), ...(cursor ? { cursor } : {}) });
      next = page.next_cursor;
      body.replaceChildren(...page.tasks.map((task) => row(task)));
      if (page.tasks.length === 0) body.append(h('tr', {}, h('td', { colspan: 5 }, 'No tasks.')));
      newer.disabled = cursors.length === 0;
      older.disabled = next === null;
      for (const task of page.tasks.filter((t) => !isTerminal(t.status)).slice(0, MAX_LIVE_ROWS)) {
        const follow = client.wait(task.task_id, { signal: live, onProgress: (v) => body.querySelector(`[data-task="${v.task_id}"]`)?.replaceWith(row(v)) });
        // A row that cannot be followed (the page left, the task expired) keeps what the list said.
        follow.catch(() => undefined);
      }
    } catch (err) {
      if (!live.aborted) outcome.append(errorMessage(err));
    }
  };

  filter.addEventListener('change', () => {
    cursors.length = 0;
    cursor = undefined;
    void load();
  });
  older.addEventListener('click', () => {
    cursors.push(cursor);
    cursor = next ?? undefined;
    void load();
  });
  newer.addEventListener('click', () => {
    cursor = cursors.pop();
    void load();
  });

  view.append(
    heading('Tasks'),
    h('div', { class: 'toolbar' }, h('label', { for: 'status-filter' }, 'Status'), filter, h('a', { class: 'button', href: '#/new' }, 'New task')),
    outcome,
    table,
    h('div', { class: 'toolbar' }, newer, older),
  );
  return load();
};

function row(task: TaskView): HTMLTableRowElement {
  return h(
    'tr',
    { 'data-task': task.task_id },
    h('td', {}, h('a', { href: taskHref(task.task_id) }, h('code', {}, task.task_id.slice(0, 8)), h('span', { class: 'visually-hidden' }, task.task_id.slice(8)))),
    h('td', {}, statusBadge(task.status)),
    h('td', {}, progressBar(task.progress, `Task ${task.task_id.slice(0, 8)}`), ' ', h('span', { class: 'counts' }, progressText(task))),
    h('td', {}, modelOf(task)),
    h('td', {}, shortTime(task.created_at)),
  );
}
