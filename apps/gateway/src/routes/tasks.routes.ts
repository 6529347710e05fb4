import { once } from 'node:events';
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { ErrorCode, VisionqError } from '@visionq/errors';
import { isTerminal, type TaskRecord } from '@visionq/tasks';
import type { GatewayDeps } from '../gateway-deps';
import { parseRequest } from '../request-schemas';
import { taskView } from '../task-view';

const resultsQuerySchema = z.object({
  cursor: z.string().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  format: z.enum(['json', 'ndjson']).optional(),
});

/** `GET /tasks/:id`, `GET /tasks/:id/results`, `DELETE /tasks/:id`. */
export function tasksRoutes(deps: GatewayDeps): Router {
  const router = Router();

  const load = async (req: Request): Promise<TaskRecord> => {
    const id = String(req.params.id);
    const task = /^[0-9a-f-]{36}$/.test(id) ? await deps.tasks.get(id) : null;
    if (!task) throw new VisionqError(ErrorCode.NotFound, `no task ${id}`, [{ field: 'id', message: 'unknown or expired task' }]);
    return task;
  };

  router.get('/tasks/:id', async (req: Request, res: Response) => {
    const task = await load(req);
    const inline = isTerminal(task.status) && task.total <= deps.config.tasks.inlineResultsLimit;
    const results = inline ? (await deps.results.page(task, null, Math.max(task.total, 1))).results : undefined;
    res.json(taskView(task, results));
  });

  router.get('/tasks/:id/results', async (req: Request, res: Response) => {
    const task = await load(req);
    const query = parseRequest(resultsQuerySchema, req.query);
    const ndjson = query.format === 'ndjson' || (query.format === undefined && req.accepts(['application/json', 'application/x-ndjson']) === 'application/x-ndjson');
    if (ndjson) {
      res.status(200).type('application/x-ndjson');
      for await (const piece of deps.results.stream(task)) {
        // A client that goes away never drains: stop reading parts for it.
        if (!res.write(piece)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
        if (res.destroyed) return;
      }
      res.end();
      return;
    }
    const page = await deps.results.page(task, query.cursor ?? null, query.limit);
    res.json({ task_id: task.id, status: task.status, results: page.results, next_cursor: page.nextCursor });
  });

  router.delete('/tasks/:id', async (req: Request, res: Response) => {
    const task = await load(req);
    const outcome = await deps.tasks.cancel(task.id);
    if (outcome === 'finished') {
      throw new VisionqError(ErrorCode.Conflict, `task ${task.id} has already ended (${task.status})`, [{ field: 'id', message: task.status }]);
    }
    if (outcome === 'cancelled') deps.logger.info('task cancelled', { task_id: task.id });
    res.json(taskView((await deps.tasks.get(task.id)) ?? task));
  });

  return router;
}
