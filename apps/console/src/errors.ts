import { VisionqClientError } from '@visionq/client';
import { h } from './dom';

/** A failed call, told the way DESIGN.md's error body names it: its code, then its message. */
export function errorMessage(err: unknown): HTMLElement {
  const text = err instanceof VisionqClientError ? err.message : err instanceof Error ? err.message : String(err);
  const code = err instanceof VisionqClientError ? err.code : 'error';
  return h('p', { class: 'alert', role: 'alert' }, h('code', {}, code), ' ', text);
}
