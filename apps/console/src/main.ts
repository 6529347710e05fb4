import type { Page } from './page';
import { newTaskPage } from './pages/new-task.page';
import { predictPage } from './pages/predict.page';
import { signInPage } from './pages/sign-in.page';
import { taskPage } from './pages/task.page';
import { tasksPage } from './pages/tasks.page';
import { parseRoute, type Route } from './router';
import { clientFor, forgetKey, gatewayIsOpen, storedKey } from './session';

const main = document.getElementById('main')!;
const nav = document.getElementById('nav')!;
const signOut = document.getElementById('sign-out')!;
let leave = new AbortController();

function pageOf(route: Route): Page {
  switch (route.name) {
    case 'sign-in':
      return signInPage;
    case 'tasks':
      return tasksPage;
    case 'task':
      return taskPage(route.id);
    case 'new':
      return newTaskPage;
    case 'predict':
      return predictPage;
  }
}

/** Renders the route of the current hash; without a key (and a gateway that wants one) that is the sign-in page. */
function render(open: boolean): void {
  leave.abort();
  leave = new AbortController();
  const key = storedKey();
  const signedIn = open || key !== null;
  let route = parseRoute(location.hash);
  if (!signedIn && route.name !== 'sign-in') route = { name: 'sign-in' };
  if (signedIn && route.name === 'sign-in') route = { name: 'tasks' };
  nav.hidden = !signedIn;
  signOut.hidden = key === null;
  for (const link of nav.querySelectorAll('a')) {
    if (parseRoute(link.hash).name === route.name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  main.replaceChildren();
  // Every page puts its heading in synchronously and reports its own errors.
  void pageOf(route)(main, { client: clientFor(key), signal: leave.signal, reload: () => render(open) });
  main.querySelector<HTMLElement>('h1')?.focus();
}

async function start(): Promise<void> {
  // A gateway serving without keys answers this without one: no sign-in then.
  const open = storedKey() === null && (await gatewayIsOpen());
  signOut.addEventListener('click', () => {
    forgetKey();
    location.hash = '#/sign-in';
    render(open);
  });
  window.addEventListener('hashchange', () => render(open));
  render(open);
}

void start();
