import type { Prediction } from '@visionq/api';
import { h } from './dom';

const percent = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 });

/** Top-k labels, most probable first, each with a bar (a <meter>, so its value is announced too). */
export function predictionList(predictions: Prediction[]): HTMLOListElement {
  return h(
    'ol',
    { class: 'top-k' },
    ...predictions.map((p) =>
      h(
        'li',
        {},
        h('span', { class: 'label' }, p.label),
        h('meter', { min: 0, max: 1, value: p.probability, 'aria-label': `${p.label}: ${percent.format(p.probability)}` }),
        h('span', { class: 'probability' }, percent.format(p.probability)),
      ),
    ),
  );
}
