export { ErrorCode, httpStatusOf } from './error-codes';
export { VisionqError, UnavailableError, ImageError, ModelError, ConfigError, toErrorBody } from './visionq-error';
export type { ErrorBody, ErrorDetail } from './visionq-error';
