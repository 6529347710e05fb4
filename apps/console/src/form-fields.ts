import type { VisionqClient } from '@visionq/client';
import { h } from './dom';

export interface ModelFields {
  fields: HTMLElement;
  model(): string | undefined;
  topK(): number | undefined;
}

/** Model (the gateway's, from `GET /models`; its default when none is picked) and top-k, for a task and for one image. */
export function modelFields(client: VisionqClient, signal: AbortSignal): ModelFields {
  const model = h('select', { id: 'model', name: 'model' }, h('option', { value: '' }, 'the default model'));
  const topK = h('input', { id: 'top-k', name: 'top_k', type: 'number', min: 1, value: 5, inputmode: 'numeric' });
  client
    .models(signal)
    .then(({ models }) =>
      model.append(...models.map((m) => h('option', { value: m.ref }, `${m.ref}${m.default_version ? ', its default version' : ''} (${m.workers} worker${m.workers === 1 ? '' : 's'})`))),
    )
    // A key may lack the right to list models: the default model is still there to pick.
    .catch(() => undefined);
  return {
    fields: h('div', { class: 'fields' }, h('div', {}, h('label', { for: 'model' }, 'Model'), model), h('div', {}, h('label', { for: 'top-k' }, 'Top-k classes'), topK)),
    model: () => model.value || undefined,
    topK: () => (topK.value === '' ? undefined : Number(topK.value)),
  };
}

/** A file picker that is also a drop zone (a <label>, so a click or Enter on it opens the picker). */
export function fileDrop(id: string, text: string, multiple: boolean, onFiles: (files: File[]) => void): HTMLElement {
  const input = h('input', { id, type: 'file', accept: 'image/*', multiple, class: 'visually-hidden' });
  const zone = h('label', { for: id, class: 'drop-zone' }, text);
  input.addEventListener('change', () => onFiles([...(input.files ?? [])]));
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('dragging');
    const files = [...(event.dataTransfer?.files ?? [])];
    onFiles(multiple ? files : files.slice(0, 1));
  });
  return h('div', { class: 'drop' }, input, zone);
}
