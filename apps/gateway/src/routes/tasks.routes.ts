import { once } from 'node:events';
import { Router, type Request, type Response } from 'express';
import { ErrorCode, isTerminal, resultsQuerySchema, VisionqError, type ResultsPage } from '@visionq/api';
import { taskView, type TaskRecord, type Tasks } from '@visionq/tasks';
import type { Logger } from '@visionq/observability';
import { canSee } from '@visionq/auth';
import { principalOf, requireScope } from '../authentication';
import { parseRequest } from './request-body';

/** `GET /tasks/:id`, `GET /tasks/:id/results`, `DELETE /tasks/:id`. */
export function tasksRoutes(tasks: Pick<Tasks, 'store' | 'results'>, options: { inlineResultsLimit: number; logger: Logger }): Router {
  const router = Router();

  /** The task named in the path, if the caller may see it: another tenant's task does not exist for it. */
  const load = async (req: Request, res: Response): Promise<TaskRecord> => {
    const id = String(req.params.id);
    const task = /^[0-9a-f-]{36}$/.test(id) ? await tasks.store.get(id) : null;
    if (!task || !canSee(principalOf(res), task.tenant)) throw new VisionqError(ErrorCode.NotFound, `no task ${id}`, [{ field: 'id', message: 'unknown or expired task' }]);
    return task;
  };

  router.get('/tasks/:id', requireScope('tasks:read'), async (req: Request, res: Response) => {
    const task = await load(req, res);
    const inline = isTerminal(task.status) && task.total <= options.inlineResultsLimit;
    const results = inline ? (await tasks.results.page(task, null, Math.max(task.total, 1))).results : undefined;
    res.json(taskView(task, results));
  });

  router.get('/tasks/:id/results', requireScope('tasks:read'), async (req: Request, res: Response) => {
    const task = await load(req, res);
    const query = parseRequest(resultsQuerySchema, req.query);
    const ndjson = query.format === 'ndjson' || (query.format === undefined && req.accepts(['application/json', 'application/x-ndjson']) === 'application/x-ndjson');
    if (ndjson) {
      res.status(200).type('application/x-ndjson');
      for await (const piece of tasks.results.stream(task)) {
        // A client that goes away never drains: stop reading parts for it.
        if (!res.write(piece)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
        if (res.destroyed) return;
      }
      res.end();
      return;
    }
    const page = await tasks.results.page(task, query.cursor ?? null, query.limit);
    res.json({ task_id: task.id, status: task.status, results: page.results, next_cursor: page.nextCursor } satisfies ResultsPage);
  });

  router.delete('/tasks/:id', requireScope('tasks:write'), async (req: Request, res: Response) => {
    const task = await load(req, res);
    const outcome = await tasks.store.cancel(task.id);
    if (outcome === 'finished' || outcome === 'already_cancelled') {
      const status = outcome === 'already_cancelled' ? 'cancelled' : task.status;
      throw new VisionqError(ErrorCode.Conflict, `task ${task.id} has already ended (${status})`, [{ field: 'id', message: status }]);
    }
    if (outcome === 'cancelled') options.logger.info('task cancelled', { task_id: task.id });
    res.json(taskView((await tasks.store.get(task.id)) ?? task));
  });

  return router;
}
