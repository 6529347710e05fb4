import { Router, type Request, type Response } from 'express';
import { statusUrl, type TaskAccepted } from '@visionq/api';
import { principalOf, requireScope } from '../authentication';
import { requestContext } from '../request-context';
import type { SubmissionService } from '../submission.service';

/** `POST /batch_predict`: JSON `images` or `source`, or a multipart upload of `files`; 202 with the task id. */
export function batchRoutes(submissions: SubmissionService): Router {
  const router = Router();

  router.post('/batch_predict', requireScope('tasks:write'), async (req: Request, res: Response) => {
    const { taskId, status, replayed } = await submissions.batch(req, principalOf(res), requestContext(res));
    if (replayed) res.set('idempotent-replayed', 'true');
    res.status(202).location(statusUrl(taskId)).json({ task_id: taskId, status, status_url: statusUrl(taskId) } satisfies TaskAccepted);
  });

  return router;
}
