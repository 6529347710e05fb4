import { isTerminal, type ImageResult, type TaskView } from '@visionq/api';
import type { VisionqClient } from '@visionq/client';
import { h, heading, shortTime } from '../dom';
import { errorMessage } from '../errors';
import type { Page } from '../page';
import { predictionList } from '../predictions.view';
import { download, resultsFile, type ResultsFormat } from '../results.download';
import { modelOf, progressBar, progressText, showProgress, statusBadge } from '../task-status.view';
import { thumbnailOf } from '../uploads';

/** Result lines shown on the page; the downloads hold them all. */
const SHOWN_RESULTS = 200;

/** One task: live progress, counts, cancel and retry, its results with thumbnails and error lines, downloads. */
export const taskPage =
  (id: string): Page =>
  async (view, { client, signal, reload }) => {
    const summary = h('div', { class: 'card' });
    const actions = h('div', { class: 'toolbar' });
    const outcome = h('div');
    const results = h('section', { 'aria-labelledby': 'results-heading' });
    view.append(heading(`Task ${id}`), summary, actions, outcome, results);

    const act = (label: string, call: () => Promise<unknown>) => {
      const button = h('button', { type: 'button' }, label);
      button.addEventListener('click', async () => {
        button.disabled = true;
        outcome.replaceChildren();
        try {
          await call();
          reload();
        } catch (err) {
          outcome.append(errorMessage(err));
          button.disabled = false;
        }
      });
      return button;
    };

    // Updated in place, not replaced: a live region announces changes of its content, and a
    // focused button must not vanish under the keyboard at each event.
    const bar = progressBar({ total: 0, done: 0 }, 'Progress');
    const said = h('span', { 'aria-live': 'polite', id: 'progress-text' });
    const facts = h('dl', { class: 'facts' });
    summary.append(h('p', { class: 'progress-line' }, bar, ' ', said), facts);
    let shownActions = '';

    const show = (task: TaskView) => {
      showProgress(bar, task.progress);
      said.textContent = progressText(task);
      facts.replaceChildren(
        fact('Status', statusBadge(task.status)),
        fact('Model', modelOf(task)),
        fact('Images', String(task.progress.total)),
        fact('Succeeded', String(task.progress.succeeded)),
        fact('Failed', String(task.progress.failed)),
        fact('Created', shortTime(task.created_at)),
        fact('Finished', shortTime(task.finished_at)),
        fact('Retries', String(task.retries)),
        ...(task.source ? [fact('Source', task.source)] : []),
        ...(task.error ? [fact('Error', h('span', {}, h('code', {}, task.error.code), ' ', task.error.message))] : []),
      );
      const ended = isTerminal(task.status);
      const retryable = ended && task.status !== 'succeeded';
      if (shownActions === `${ended} ${retryable}`) return;
      shownActions = `${ended} ${retryable}`;
      const withFailed = h('input', { id: 'retry-failed-images', type: 'checkbox', checked: true });
      actions.replaceChildren(
        ...(ended ? [] : [act('Cancel task', () => client.cancel(id))]),
        ...(retryable ? [act('Retry', () => client.retry(id, { failedImages: withFailed.checked })), h('label', { for: 'retry-failed-images', class: 'inline' }, withFailed, ' with the images that have error lines')] : []),
      );
    };

    try {
      const task = await client.get(id, signal);
      show(task);
      const ended = isTerminal(task.status) ? task : await client.wait(id, { signal, onProgress: show });
      show(ended);
      results.replaceChildren(...(await resultList(client, ended, signal)));
    } catch (err) {
      if (!signal.aborted) outcome.append(errorMessage(err));
    }
  };

function fact(term: string, value: string | Node): HTMLDivElement {
  return h('div', {}, h('dt', {}, term), h('dd', {}, value));
}

async function resultList(client: VisionqClient, task: TaskView, signal: AbortSignal): Promise<HTMLElement[]> {
  const all: ImageResult[] = [];
  for await (const result of client.results(task.task_id, signal)) all.push(result);
  const save = (format: ResultsFormat) => {
    const button = h('button', { type: 'button' }, `Download ${format.toUpperCase()}`);
    button.addEventListener('click', () => download(resultsFile(task.task_id, all, format)));
    return button;
  };
  const shown = all.slice(0, SHOWN_RESULTS);
  return [
    h('h2', { id: 'results-heading' }, `Results (${all.length})`),
    h('div', { class: 'toolbar' }, save('ndjson'), save('csv')),
    ...(all.length > shown.length ? [h('p', { class: 'hint' }, `The first ${shown.length} of ${all.length}; the downloads hold every one.`)] : []),
    h('ul', { class: 'results' }, ...shown.map((result) => resultItem(task.task_id, result))),
  ];
}

function resultItem(taskId: string, result: ImageResult): HTMLLIElement {
  const name = result.image.slice(result.image.lastIndexOf('/') + 1);
  return h(
    'li',
    { class: 'error' in result ? 'result failed' : 'result' },
    thumbnail(thumbnailOf(taskId, result.image)),
    h(
      'div',
      { class: 'result-body' },
      h('h3', { title: result.image }, name),
      'error' in result ? h('p', { class: 'error-line' }, h('code', {}, result.error.code), ' ', result.error.message) : predictionList(result.predictions),
    ),
  );
}

/** The uploaded file when this page has it and the browser can show it (an upload that is no image cannot); else a blank tile. */
function thumbnail(url: string | undefined): HTMLElement {
  const none = () => h('div', { class: 'thumbnail none', 'aria-hidden': 'true' });
  if (url === undefined) return none();
  // alt "": the image's name is the heading beside it.
  const image = h('img', { class: 'thumbnail', src: url, alt: '' });
  image.addEventListener('error', () => image.replaceWith(none()));
  return image;
}
