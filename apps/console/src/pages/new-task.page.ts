import { h, heading } from '../dom';
import { errorMessage } from '../errors';
import { fileDrop, modelFields } from '../form-fields';
import type { Page } from '../page';
import { taskHref } from '../router';
import { rememberUploads } from '../uploads';

/** A task of dropped or picked images (a streamed multipart upload) or of an `s3://` prefix. */
export const newTaskPage: Page = (view, { client, signal }) => {
  let files: File[] = [];
  const chosen = h('p', { class: 'hint', 'aria-live': 'polite' }, 'No file chosen.');
  const picker = fileDrop('files', 'Drop images here, or choose them', true, (picked) => {
    files = picked;
    chosen.textContent = picked.length === 0 ? 'No file chosen.' : `${picked.length} file${picked.length === 1 ? '' : 's'} chosen: ${picked.map((f) => f.name).join(', ')}`;
  });
  const source = h('input', { id: 'source', name: 'source', type: 'text', placeholder: 's3://bucket/prefix/', spellcheck: 'false', 'aria-describedby': 'source-hint' });
  const options = modelFields(client, signal);
  const outcome = h('div');
  const submit = h('button', { type: 'submit' }, 'Start task');
  const form = h(
    'form',
    { class: 'card' },
    h('fieldset', {}, h('legend', {}, 'Images to upload'), picker, chosen),
    h('div', {}, h('label', { for: 'source' }, 'Or an s3:// prefix'), source, h('p', { class: 'hint', id: 'source-hint' }, 'Every image under it; the workers list it page by page.')),
    options.fields,
    submit,
    outcome,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    outcome.replaceChildren();
    const prefix = source.value.trim();
    if ((files.length > 0) === (prefix !== '')) {
      outcome.append(h('p', { class: 'alert', role: 'alert' }, 'Choose images or name a prefix (one of the two).'));
      return;
    }
    submit.disabled = true;
    try {
      const common = { model: options.model(), topK: options.topK(), signal };
      const { task_id } = prefix === '' ? await client.submit({ files, ...common }) : await client.submit({ source: prefix, ...common });
      if (files.length > 0) rememberUploads(task_id, files);
      location.hash = taskHref(task_id);
    } catch (err) {
      if (!signal.aborted) outcome.append(errorMessage(err));
    } finally {
      submit.disabled = false;
    }
  });
  view.append(heading('New task'), form);
};
