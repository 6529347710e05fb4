import { ErrorCode } from './error-codes';
import { VisionqError, type ErrorDetail } from './visionq-error';
import { statusUrl } from './task-view';

/** DESIGN.md's error body; a failure about a task the client may still poll also names it. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details: ErrorDetail[] };
  task_id?: string;
  status_url?: string;
}

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
