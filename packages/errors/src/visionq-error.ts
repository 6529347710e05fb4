import { ErrorCode } from './error-codes';

export interface ErrorDetail {
  /** Where the problem is: a request field, a config variable, an image URI. */
  field?: string;
  message: string;
}

/** The error shape of DESIGN.md, used in HTTP bodies; result lines carry `error` alone. */
export interface ErrorBody {
  error: { code: string; message: string; details: ErrorDetail[] };
}

/** Root of every error visionq raises on purpose. Anything else is an internal error. */
export class VisionqError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetail[];

  constructor(code: ErrorCode, message: string, details: ErrorDetail[] = [], options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }
}

/** A problem with one image: reported in that image's result, never retried. */
export class ImageError extends VisionqError {}

/** A model folder that cannot be served (bad manifest, graph mismatch, missing file). */
export class ModelError extends VisionqError {
  constructor(message: string, details: ErrorDetail[] = [], options?: { cause?: unknown }) {
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
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Unavailable, message, [], options);
  }
}

/**
 * Turns any thrown value into the public error body. Unknown errors become a generic
 * internal error: their message and stack belong in the log, not in a response.
 */
export function toErrorBody(err: unknown): ErrorBody {
  if (err instanceof VisionqError) {
    return { error: { code: err.code, message: err.message, details: err.details } };
  }
  return { error: { code: ErrorCode.Internal, message: 'internal error', details: [] } };
}
