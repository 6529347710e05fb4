import { ErrorCode } from './error-codes';
import type { ErrorDetail } from './error-body';

export interface VisionqErrorOptions {
  cause?: unknown;
  /** The task the failure is about, when the client may still poll it (a `/predict` past its timeout). */
  taskId?: string;
  /** When the caller may try again (a rate limit): the `Retry-After` of the answer. */
  retryAfterSeconds?: number;
}

/** Root of every error visionq raises on purpose. Anything else is an internal error. */
export class VisionqError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetail[];
  readonly taskId?: string;
  readonly retryAfterSeconds?: number;

  constructor(code: ErrorCode, message: string, details: ErrorDetail[] = [], options: VisionqErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = details;
    if (options.taskId !== undefined) this.taskId = options.taskId;
    if (options.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** A problem with one image: reported in that image's result, never retried. */
export class ImageError extends VisionqError {}

/** A model folder that cannot be served (bad manifest, graph mismatch, missing file). */
export class ModelError extends VisionqError {
  constructor(message: string, details: ErrorDetail[] = [], options?: VisionqErrorOptions) {
    super(ErrorCode.ModelInvalid, message, details, options);
  }
}

/** A configuration value that stops start-up; details name the variables. */
export class ConfigError extends VisionqError {
  constructor(message: string, details: ErrorDetail[] = []) {
    super(ErrorCode.ConfigInvalid, message, details);
  }
}

/** The component is stopping or stopped: the caller may retry elsewhere or later. */
export class UnavailableError extends VisionqError {
  constructor(message: string, options?: VisionqErrorOptions) {
    super(ErrorCode.Unavailable, message, [], options);
  }
}

/** `POST /predict` had no result in time; the task goes on and `taskId` can be polled. */
export class PredictTimeoutError extends VisionqError {
  constructor(message: string, taskId: string) {
    super(ErrorCode.Timeout, message, [], { taskId });
  }
}
