import { h, heading } from '../dom';
import { errorMessage } from '../errors';
import type { Page } from '../page';
import { clientFor, keepKey } from '../session';

/** A key, checked by listing one task with it, then kept for the tab's session. */
export const signInPage: Page = (view) => {
  const key = h('input', { id: 'key', name: 'key', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
  const outcome = h('div', { 'aria-live': 'polite' });
  const form = h(
    'form',
    { class: 'card narrow' },
    h('label', { for: 'key' }, 'API key'),
    key,
    h('p', { class: 'hint', id: 'key-hint' }, 'Kept in this tab only (session storage), sent to this gateway with each call.'),
    h('button', { type: 'submit' }, 'Sign in'),
    outcome,
  );
  key.setAttribute('aria-describedby', 'key-hint');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    outcome.replaceChildren();
    try {
      await clientFor(key.value.trim()).list({ limit: 1 });
      keepKey(key.value.trim());
      location.hash = '#/tasks';
    } catch (err) {
      outcome.append(errorMessage(err));
      key.focus();
    }
  });
  view.append(heading('Sign in'), form);
};
