import { Router, type Request, type Response } from 'express';
import { ErrorCode, VisionqError, type PredictResponse } from '@visionq/api';
import type { TaskStore } from '@visionq/tasks';
import { principalOf, requireScope } from '../authentication';
import { requestContext } from '../request-context';
import type { SubmissionService } from '../submission.service';

/**
 * `POST /predict`: one image, answered when a worker has classified it. It runs as a
 * one-image task on the model's predict queue, which workers take before batch work.
 * Past PREDICT_TIMEOUT_MS the answer is 504 with the task id; the task goes on.
 */
export function predictRoutes(submissions: SubmissionService, tasks: TaskStore): Router {
  const router = Router();

  router.post('/predict', requireScope('predict'), async (req: Request, res: Response) => {
    const { taskId, image, model, result } = await submissions.predict(req, principalOf(res), requestContext(res));
    let line;
    try {
      line = await result;
    } catch (err) {
      throw await failureOf(tasks, taskId, err);
    }
    if ('error' in line) {
      throw new VisionqError(line.error.code, line.error.message, [{ field: 'image', message: image }], { taskId });
    }
    res.json({ task_id: taskId, model, image, predictions: line.predictions } satisfies PredictResponse);
  });

  return router;
}

/** Why a predict job failed for good, as its task recorded it (a worker's error, not the queue's wording). */
async function failureOf(tasks: TaskStore, taskId: string, err: unknown): Promise<unknown> {
  if (err instanceof VisionqError) return err; // the timeout, with its task id
  const task = await tasks.get(taskId).catch(() => null); // Redis gone: the job's own error says enough
  if (!task?.error) return err;
  return new VisionqError(task.error.code as ErrorCode, task.error.message, [{ field: 'task_id', message: taskId }], { taskId });
}
