import { z } from 'zod';
import { ErrorCode, errorCodeSchema } from './error-codes';
import { VisionqError } from './visionq-error';
import { statusUrl } from './task-view';

export const errorDetailSchema = z
  .object({
    field: z.string().optional().describe('Where the problem is: a request field, a header, a config variable, an image URI.'),
    message: z.string(),
  })
  .meta({ id: 'ErrorDetail', description: 'One problem of a refused request.' });
export type ErrorDetail = z.infer<typeof errorDetailSchema>;

/** DESIGN.md's error body; a failure about a task the client may still poll also names it. */
export const errorBodySchema = z
  .object({
    error: z.object({ code: errorCodeSchema, message: z.string().describe('Human text; not for parsing.'), details: z.array(errorDetailSchema) }),
    task_id: z.string().optional().describe('The task the failure is about, when it goes on and can be polled (a `/predict` past its timeout).'),
    status_url: z.string().optional().describe('Where to poll that task.'),
  })
  .meta({ id: 'ErrorBody', description: 'Every error answer: a code, a message and the details, with the status of its code; nothing was enqueued.' });
export type ErrorBody = z.infer<typeof errorBodySchema>;

/**
 * The one function that makes an error body. Errors visionq did not raise on purpose
 * become a bare internal error: their message and stack belong in the log, not in a response.
 */
export function errorBody(err: unknown): ErrorBody {
  if (!(err instanceof VisionqError)) return { error: { code: ErrorCode.Internal, message: 'internal error', details: [] } };
  const body: ErrorBody = { error: { code: err.code, message: err.message, details: err.details } };
  if (err.taskId !== undefined) Object.assign(body, { task_id: err.taskId, status_url: statusUrl(err.taskId) });
  return body;
}
