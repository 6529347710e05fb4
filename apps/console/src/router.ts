/** Hash routes, so that the gateway serves static files only. */
export type Route = { name: 'sign-in' } | { name: 'tasks' } | { name: 'task'; id: string } | { name: 'new' } | { name: 'predict' };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '');
  const task = /^\/tasks\/([^/]+)$/.exec(path);
  if (task) return { name: 'task', id: decodeURIComponent(task[1]!) };
  if (path === '/sign-in') return { name: 'sign-in' };
  if (path === '/new') return { name: 'new' };
  if (path === '/predict') return { name: 'predict' };
  return { name: 'tasks' };
}

export const taskHref = (id: string) => `#/tasks/${encodeURIComponent(id)}`;
