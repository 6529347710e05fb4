import { h, heading } from '../dom';
import { errorMessage } from '../errors';
import { fileDrop, modelFields } from '../form-fields';
import type { Page } from '../page';
import { predictionList } from '../predictions.view';
import { taskHref } from '../router';

/** One image classified at once (`POST /predict`), its top-k shown with bars. */
export const predictPage: Page = (view, { client, signal }) => {
  let file: File | undefined;
  let thumbnail: string | undefined;
  const chosen = h('p', { class: 'hint', 'aria-live': 'polite' }, 'No image chosen.');
  const picker = fileDrop('image', 'Drop an image here, or choose one', false, ([picked]) => {
    file = picked;
    chosen.textContent = picked ? `Chosen: ${picked.name}` : 'No image chosen.';
  });
  const options = modelFields(client, signal);
  const submit = h('button', { type: 'submit' }, 'Classify');
  const outcome = h('section', { 'aria-live': 'polite', 'aria-label': 'Prediction' });
  const form = h('form', { class: 'card' }, h('fieldset', {}, h('legend', {}, 'Image'), picker, chosen), options.fields, submit);
  signal.addEventListener('abort', () => thumbnail && URL.revokeObjectURL(thumbnail));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    outcome.replaceChildren();
    if (!file) {
      outcome.append(h('p', { class: 'alert', role: 'alert' }, 'Choose an image first.'));
      return;
    }
    submit.disabled = true;
    try {
      const answer = await client.predict(file, { model: options.model(), topK: options.topK(), signal });
      if (thumbnail) URL.revokeObjectURL(thumbnail);
      thumbnail = URL.createObjectURL(file);
      outcome.append(
        h('div', { class: 'result' }, h('img', { class: 'thumbnail', src: thumbnail, alt: file.name }), h('div', { class: 'result-body' }, h('h2', {}, file.name), h('p', { class: 'hint' }, `${answer.model.name} ${answer.model.version}, `, h('a', { href: taskHref(answer.task_id), id: 'predict-task' }, 'its task')), predictionList(answer.predictions))),
      );
    } catch (err) {
      if (!signal.aborted) outcome.append(errorMessage(err));
    } finally {
      submit.disabled = false;
    }
  });
  view.append(heading('Predict one image'), form, outcome);
};
