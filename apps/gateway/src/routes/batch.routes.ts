import { Router, type Request, type Response } from 'express';
import { ErrorCode, VisionqError } from '@visionq/errors';
import { joinObjectUri } from '@visionq/object-store';
import type { TaskInput, TaskSpec } from '@visionq/tasks';
import type { GatewayDeps } from '../gateway-deps';
import { receiveUpload } from '../multipart-upload';
import { batchJsonSchema, formFieldsSchema, parseRequest } from '../request-schemas';
import { buildTaskSpec, newTaskId } from '../task-spec';
import { checkImageUri, digestOf, isMultipart, requireJson } from './request-body';

interface Submission {
  spec: TaskSpec;
  input: TaskInput;
  digest: string;
  /** Objects this request stored, deleted again should it not become a task. */
  uploads: string[];
}

/** `POST /batch_predict`: JSON `images` or `source`, or a multipart upload of `files`. */
export function batchRoutes(deps: GatewayDeps): Router {
  const router = Router();

  router.post('/batch_predict', async (req: Request, res: Response) => {
    const id = newTaskId();
    const submission = isMultipart(req) ? await fromUpload(deps, req, id) : fromJson(deps, req, id);
    try {
      const key = req.get('idempotency-key');
      if (key !== undefined) {
        const claim = await deps.idempotency.claim(key, submission.digest, id);
        if (claim.outcome !== 'new') {
          await discard(deps, submission.uploads);
          if (claim.outcome === 'conflict') {
            throw new VisionqError(ErrorCode.Conflict, `Idempotency-Key was used for a different request (task ${claim.taskId})`, [
              { field: 'Idempotency-Key', message: 'reused with a different body' },
            ]);
          }
          const task = await deps.tasks.get(claim.taskId);
          res.status(202).set('idempotent-replayed', 'true').location(`/tasks/${claim.taskId}`);
          res.json({ task_id: claim.taskId, status: task?.status ?? 'queued', status_url: `/tasks/${claim.taskId}` });
          return;
        }
      }
      try {
        await deps.submitter.submit(submission.spec, submission.input);
      } catch (err) {
        if (key !== undefined) await deps.idempotency.release(key, id).catch(() => undefined);
        throw err;
      }
    } catch (err) {
      await discard(deps, submission.uploads);
      throw err;
    }
    deps.metrics.tasksSubmitted.inc({ model: submission.spec.model, kind: 'batch' });
    deps.logger.info('task queued', { task_id: id, model: submission.spec.model, images: 'images' in submission.input ? submission.input.images.length : undefined });
    res.status(202).location(`/tasks/${id}`).json({ task_id: id, status: 'queued', status_url: `/tasks/${id}` });
  });

  return router;
}

function fromJson(deps: GatewayDeps, req: Request, id: string): Submission {
  requireJson(req);
  const body = parseRequest(batchJsonSchema, req.body);
  const { images, source, ...options } = body;
  const spec = buildTaskSpec(deps, id, 'batch', options);
  let input: TaskInput;
  if (images !== undefined) {
    if (images.length > deps.config.tasks.maxImages) {
      throw new VisionqError(ErrorCode.InvalidRequest, `${images.length} images is more than MAX_TASK_IMAGES=${deps.config.tasks.maxImages}; use a \`source\` prefix for more`, [
        { field: 'images', message: 'too many images' },
      ]);
    }
    images.forEach((uri, i) => checkImageUri(deps.buckets, uri, `images[${i}]`));
    input = { images };
  } else {
    deps.buckets.check(source!, 'source'); // a malformed URI is invalid_argument, a foreign bucket forbidden
    input = { source: source! };
    spec.source = source!;
  }
  return { spec, input, digest: digestOf(body), uploads: [] };
}

async function fromUpload(deps: GatewayDeps, req: Request, id: string): Promise<Submission> {
  const form = await receiveUpload(req, {
    store: deps.store,
    folder: joinObjectUri(deps.config.store.uploadsUri, `${id}/`),
    fileField: 'files',
    maxFiles: deps.config.tasks.maxImages,
    maxFileBytes: deps.config.imaging.maxImageBytes,
  });
  try {
    const spec = buildTaskSpec(deps, id, 'batch', parseRequest(formFieldsSchema, form.fields));
    if (form.files.length === 0) {
      throw new VisionqError(ErrorCode.InvalidRequest, 'upload at least one image in the field "files"', [{ field: 'files', message: 'no files' }]);
    }
    return { spec, input: { images: form.files }, digest: form.digest, uploads: form.files };
  } catch (err) {
    await discard(deps, form.files);
    throw err;
  }
}

async function discard(deps: GatewayDeps, uploads: string[]): Promise<void> {
  await Promise.all(uploads.map((uri) => deps.store.delete(uri).catch(() => undefined)));
}
