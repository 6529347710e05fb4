import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { Router } from 'express';
import type { Queue } from 'bullmq';
import { requireScope } from '../authentication';

export const ADMIN_UI_PATH = '/admin/queues';

/**
 * The queue UI (bull-board) at `/admin/queues`: every model version's chunk and predict
 * queues and the callbacks' deliveries, their jobs, failures and retries. Admin keys only:
 * it shows every tenant's jobs and can retry or remove them.
 */
export class AdminQueues {
  readonly router = Router();
  private readonly board: ReturnType<typeof createBullBoard>;

  constructor(queues: Queue[]) {
    const adapter = new ExpressAdapter();
    adapter.setBasePath(ADMIN_UI_PATH);
    this.board = createBullBoard({ queues: queues.map((queue) => new BullMQAdapter(queue)), serverAdapter: adapter, options: { uiConfig: { boardTitle: 'visionq queues' } } });
    this.router.use(ADMIN_UI_PATH, requireScope('admin'), adapter.getRouter() as Router);
  }

  /** Shows these queues from now on (model versions came or went). */
  replace(queues: Queue[]): void {
    this.board.replaceQueues(queues.map((queue) => new BullMQAdapter(queue)));
  }
}
