import { Router, type Request, type Response } from 'express';
import { ErrorCode, httpStatusOf, VisionqError } from '@visionq/errors';
import { joinObjectUri } from '@visionq/object-store';
import { PredictTimeoutError, type TaskSpec } from '@visionq/tasks';
import type { GatewayDeps } from '../gateway-deps';
import { receiveUpload } from '../multipart-upload';
import { parseRequest, predictFormSchema, predictJsonSchema } from '../request-schemas';
import { buildTaskSpec, newTaskId } from '../task-spec';
import { checkImageUri, isMultipart, requireJson } from './request-body';

/**
 * `POST /predict`: one image, answered when a worker has classified it. It runs as a
 * one-image task on the model's predict queue, which workers take before batch work.
 * Past PREDICT_TIMEOUT_MS the answer is 504 with the task id; the task goes on.
 */
export function predictRoutes(deps: GatewayDeps): Router {
  const router = Router();

  router.post('/predict', async (req: Request, res: Response) => {
    const id = newTaskId();
    const uploaded = isMultipart(req);
    const { image, spec } = uploaded ? await fromUpload(deps, req, id) : fromJson(deps, req, id);
    const { wait } = await deps.submitter.predict(spec, image).catch(async (err: unknown) => {
      if (uploaded) await deps.store.delete(image).catch(() => undefined);
      throw err;
    });
    deps.metrics.tasksSubmitted.inc({ model: spec.model, kind: 'predict' });
    const model = deps.catalog.get(spec.model).manifest;
    try {
      const result = await wait(deps.config.tasks.predictTimeoutMs);
      if ('error' in result) {
        const code = result.error.code as ErrorCode;
        res.status(httpStatusOf(code)).json({ error: { ...result.error, details: [{ field: 'image', message: image }] }, task_id: id });
        return;
      }
      res.json({ task_id: id, model: { name: model.name, version: model.version }, image, predictions: result.predictions });
    } catch (err) {
      if (!(err instanceof PredictTimeoutError)) throw await failureOf(deps, id, err);
      res.status(504).location(`/tasks/${id}`).json({
        error: { code: ErrorCode.Timeout, message: `no result within PREDICT_TIMEOUT_MS=${deps.config.tasks.predictTimeoutMs}; the task goes on: poll status_url`, details: [] },
        task_id: id,
        status_url: `/tasks/${id}`,
      });
    }
  });

  return router;
}

/** Why a predict job failed for good, as its task recorded it (a worker's error, not the queue's wording). */
async function failureOf(deps: GatewayDeps, taskId: string, err: unknown): Promise<unknown> {
  const task = await deps.tasks.get(taskId).catch(() => null);
  if (!task?.error) return err;
  return new VisionqError(task.error.code as ErrorCode, task.error.message, [{ field: 'task_id', message: taskId }]);
}

function fromJson(deps: GatewayDeps, req: Request, id: string): { image: string; spec: TaskSpec } {
  requireJson(req);
  const { image, ...options } = parseRequest(predictJsonSchema, req.body);
  const spec = buildTaskSpec(deps, id, 'predict', options);
  checkImageUri(deps.buckets, image, 'image');
  return { image, spec };
}

async function fromUpload(deps: GatewayDeps, req: Request, id: string): Promise<{ image: string; spec: TaskSpec }> {
  const form = await receiveUpload(req, {
    store: deps.store,
    folder: joinObjectUri(deps.config.store.uploadsUri, `${id}/`),
    fileField: 'file',
    maxFiles: 1,
    maxFileBytes: deps.config.imaging.maxImageBytes,
  });
  try {
    // Every check runs before the upload is kept: a refused request leaves nothing in the store.
    const spec = buildTaskSpec(deps, id, 'predict', parseRequest(predictFormSchema, form.fields));
    if (form.files.length !== 1) throw new VisionqError(ErrorCode.InvalidRequest, 'upload one image in the field "file"', [{ field: 'file', message: 'no file' }]);
    return { image: form.files[0]!, spec };
  } catch (err) {
    await Promise.all(form.files.map((uri) => deps.store.delete(uri).catch(() => undefined)));
    throw err;
  }
}
