import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { Router } from 'express';
import type { Queue } from 'bullmq';
import { requireScope } from '../authentication';

export const ADMIN_UI_PATH = '/admin/queues';

/**
 * The queue UI (bull-board) at `/admin/queues`: every model's chunk and predict queues and
 * the callbacks' deliveries, their jobs, failures and retries. Admin keys only: it shows
 * every tenant's jobs and can retry or remove them.
 */
export function adminRoutes(queues: Queue[]): Router {
  const board = new ExpressAdapter();
  board.setBasePath(ADMIN_UI_PATH);
  createBullBoard({ queues: queues.map((queue) => new BullMQAdapter(queue)), serverAdapter: board, options: { uiConfig: { boardTitle: 'visionq queues' } } });
  const router = Router();
  router.use(ADMIN_UI_PATH, requireScope('admin'), board.getRouter() as Router);
  return router;
}
