import { z } from 'zod';

/**
 * Every error visionq reports carries one of these codes. Per-image codes appear in
 * result lines; the rest in HTTP error bodies. The HTTP status of each code is decided
 * here and nowhere else.
 */
export enum ErrorCode {
  // Per-image: the task goes on, the image gets an error line.
  ImageDecodeFailed = 'image_decode_failed',
  ImageTooLarge = 'image_too_large',
  UnsupportedFormat = 'unsupported_format',
  ImageNotFound = 'image_not_found',
  // Requests.
  InvalidRequest = 'invalid_request',
  InvalidArgument = 'invalid_argument',
  UnsupportedOption = 'unsupported_option',
  ModelNotFound = 'model_not_found',
  NotFound = 'not_found',
  Conflict = 'conflict',
  PayloadTooLarge = 'payload_too_large',
  UnsupportedMediaType = 'unsupported_media_type',
  RequestTimeout = 'request_timeout',
  HeadersTooLarge = 'headers_too_large',
  Unauthorized = 'unauthorized',
  Forbidden = 'forbidden',
  RateLimited = 'rate_limited',
  // Service.
  ModelInvalid = 'model_invalid',
  InferenceFailed = 'inference_failed',
  Unavailable = 'unavailable',
  Timeout = 'timeout',
  ConfigInvalid = 'config_invalid',
  Internal = 'internal_error',
}

export const errorCodeSchema = z.enum(ErrorCode).meta({ id: 'ErrorCode', description: 'Every error visionq reports carries one of these codes; per-image codes appear in result lines, the rest in error bodies with the status of their code.' });

const HTTP_STATUS: Record<ErrorCode, number> = {
  [ErrorCode.ImageDecodeFailed]: 422,
  [ErrorCode.ImageTooLarge]: 413,
  [ErrorCode.UnsupportedFormat]: 415,
  [ErrorCode.ImageNotFound]: 404,
  [ErrorCode.InvalidRequest]: 400,
  [ErrorCode.InvalidArgument]: 400,
  [ErrorCode.UnsupportedOption]: 400,
  [ErrorCode.ModelNotFound]: 404,
  [ErrorCode.NotFound]: 404,
  [ErrorCode.Conflict]: 409,
  [ErrorCode.PayloadTooLarge]: 413,
  [ErrorCode.UnsupportedMediaType]: 415,
  [ErrorCode.RequestTimeout]: 408,
  [ErrorCode.HeadersTooLarge]: 431,
  [ErrorCode.Unauthorized]: 401,
  [ErrorCode.Forbidden]: 403,
  [ErrorCode.RateLimited]: 429,
  [ErrorCode.ModelInvalid]: 500,
  [ErrorCode.InferenceFailed]: 500,
  [ErrorCode.Unavailable]: 503,
  [ErrorCode.Timeout]: 504,
  [ErrorCode.ConfigInvalid]: 500,
  [ErrorCode.Internal]: 500,
};

/** The one place that maps an error code to an HTTP status. */
export function httpStatusOf(code: ErrorCode): number {
  return HTTP_STATUS[code];
}
