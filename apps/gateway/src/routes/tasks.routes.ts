import { once } from 'node:events';
import { Router, type Request, type Response } from 'express';
import { ErrorCode, isTerminal, resultsQuerySchema, retryJsonSchema, taskListQuerySchema, VisionqError, type ResultsPage, type TaskEvent, type TaskList } from '@visionq/api';
import type { ModelCatalog } from '@visionq/models';
import { taskView, type TaskRecord, type Tasks } from '@visionq/tasks';
import { canSee } from '@visionq/auth';
import { principalOf, requireScope } from '../authentication';
import { requestContext } from '../request-context';
import { parseRequest, requireJson } from './request-body';

/** `GET /tasks`, `GET /tasks/:id`, its results and events, `POST /tasks/:id/retry`, `DELETE /tasks/:id`. */
export function tasksRoutes(
  tasks: Pick<Tasks, 'store' | 'results' | 'events' | 'hub' | 'submitter'>,
  catalog: Pick<ModelCatalog, 'resolve'>,
  options: { inlineResultsLimit: number; heartbeatMs: number },
): Router {
  const router = Router();

  /** The task named in the path, if the caller may see it: another tenant's task does not exist for it. */
  const load = async (req: Request, res: Response): Promise<TaskRecord> => {
    const id = String(req.params.id);
    const task = /^[0-9a-f-]{36}$/.test(id) ? await tasks.store.get(id) : null;
    if (!task || !canSee(principalOf(res), task.tenant)) throw new VisionqError(ErrorCode.NotFound, `no task ${id}`, [{ field: 'id', message: 'unknown or expired task' }]);
    return task;
  };

  /** The caller's tenant's tasks, newest first, optionally of one status, page by page. */
  router.get('/tasks', requireScope('tasks:read'), async (req: Request, res: Response) => {
    const query = parseRequest(taskListQuerySchema, req.query);
    const page = await tasks.store.list(principalOf(res).tenant, { limit: query.limit, ...(query.status ? { status: query.status } : {}), ...(query.cursor ? { cursor: query.cursor } : {}) });
    res.json({ tasks: page.tasks.map((task) => taskView(task)), next_cursor: page.nextCursor } satisfies TaskList);
  });

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
      res.status(200).type('application/x-ndjson; charset=utf-8');
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

  /**
   * Server-Sent Events of the task's event log: `progress` (created, running, each committed
   * or failed chunk, each listed page, a retry) and `ended`, each with the task view as it
   * stood after the change; the entry id is the SSE id, so a client resumes with
   * Last-Event-ID. Closed after the log's latest `ended` (a retry adds events after an end).
   */
  router.get('/tasks/:id/events', requireScope('tasks:read'), async (req: Request, res: Response) => {
    const task = await load(req, res);
    const after = req.get('last-event-id') ?? (typeof req.query.last_event_id === 'string' ? req.query.last_event_id : undefined);
    if (after !== undefined && !/^\d{1,20}-\d{1,20}$/.test(after)) {
      throw new VisionqError(ErrorCode.InvalidArgument, 'Last-Event-ID is not an event id this API sent', [{ field: 'Last-Event-ID', message: 'expected <ms>-<seq>' }]);
    }
    res.status(200).set({ 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
    res.flushHeaders();
    let stop = () => undefined as void;
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), options.heartbeatMs);
    const end = () => {
      clearInterval(heartbeat);
      stop();
      if (!res.writableEnded) res.end();
    };
    res.on('close', end);
    const send = async (event: TaskEvent, last: boolean) => {
      const record = event.type === 'ended' ? ((await tasks.store.get(task.id)) ?? task) : task;
      // The record is read once; what changes with each event comes from the event itself.
      const view = {
        ...taskView(record),
        status: event.status,
        progress: event.progress,
        started_at: event.type === 'created' ? null : (record.startedAt ?? event.at),
        finished_at: event.type === 'ended' ? (record.finishedAt ?? event.at) : null,
      };
      res.write(`id: ${event.id}\nevent: ${event.type === 'ended' ? 'ended' : 'progress'}\ndata: ${JSON.stringify(view)}\n\n`);
      if (event.type === 'ended' && last) end();
    };
    // Sends in order, even though an `ended` reads the record first.
    let sending = Promise.resolve();
    const enqueue = (event: TaskEvent, last = true) => (sending = sending.then(() => (res.writableEnded ? undefined : send(event, last))).catch((err: Error) => {
      requestContext(res).log.warn('event stream write failed', { task_id: task.id, error: err.message });
      end();
    }));
    // The log so far at once, then live through this gateway's one read loop.
    const past = await tasks.events.replay(task.id, after);
    past.forEach((event, i) => enqueue(event, i === past.length - 1));
    if (past.at(-1)?.type === 'ended' || res.writableEnded) return;
    // Ended at or before Last-Event-ID: nothing more will come.
    if (isTerminal((await tasks.store.status(task.id)) ?? 'failed')) {
      const rest = await tasks.events.replay(task.id, past.at(-1)?.id ?? after);
      rest.forEach((event, i) => enqueue(event, i === rest.length - 1));
      void sending.then(end);
      return;
    }
    stop = tasks.hub.watch(task.id, past.at(-1)?.id ?? after, enqueue);
  });

  /** Runs a failed task's failed chunks again (202, the task view); 409 when it has none. The body is optional. */
  router.post('/tasks/:id/retry', requireScope('tasks:write'), async (req: Request, res: Response) => {
    const task = await load(req, res);
    const hasBody = req.get('content-length') !== undefined ? req.get('content-length') !== '0' : req.get('transfer-encoding') !== undefined;
    if (hasBody) requireJson(req);
    const body = hasBody ? parseRequest(retryJsonSchema, req.body) : {};
    // A retry runs on the version the task ran on: once it is removed, no worker takes the work.
    catalog.resolve(task.model);
    const round = await tasks.submitter.retry(task, { failedImages: body.failed_images === true });
    requestContext(res).log.info('task retried', { task_id: task.id, round, failed_images: body.failed_images === true });
    res.status(202).json(taskView((await tasks.store.get(task.id)) ?? task));
  });

  router.delete('/tasks/:id', requireScope('tasks:write'), async (req: Request, res: Response) => {
    const task = await load(req, res);
    const outcome = await tasks.store.cancel(task.id);
    if (outcome === 'finished' || outcome === 'already_cancelled') {
      const status = outcome === 'already_cancelled' ? 'cancelled' : task.status;
      throw new VisionqError(ErrorCode.Conflict, `task ${task.id} has already ended (${status})`, [{ field: 'id', message: status }]);
    }
    if (outcome === 'cancelled') requestContext(res).log.info('task cancelled', { task_id: task.id });
    res.json(taskView((await tasks.store.get(task.id)) ?? task));
  });

  return router;
}
