import { ErrorCode, UnavailableError, VisionqError } from '@visionq/api';

/** No such object (or no such bucket). */
export class ObjectNotFoundError extends VisionqError {
  constructor(readonly uri: string) {
    super(ErrorCode.NotFound, `object not found: ${uri}`);
  }
}

/** The store refused access to the object. */
export class ObjectAccessDeniedError extends VisionqError {
  constructor(readonly uri: string) {
    super(ErrorCode.Forbidden, `access denied: ${uri}`);
  }
}

/** The object is larger than the caller accepts. */
export class ObjectTooLargeError extends VisionqError {
  constructor(readonly uri: string, readonly size: number, readonly limit: number) {
    super(ErrorCode.PayloadTooLarge, `object ${uri} is ${size} bytes, over the limit of ${limit}`);
  }
}

/** The store cannot be reached or answered with a transient failure: retry with backoff. */
export class StoreUnavailableError extends UnavailableError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
