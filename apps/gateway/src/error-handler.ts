import type { ErrorRequestHandler } from 'express';
import { ErrorCode, errorBody, httpStatusOf, VisionqError } from '@visionq/api';
import type { GatewayMetrics, Logger } from '@visionq/observability';
import { isRedisConnectionError, redisUnavailable } from '@visionq/tasks';
import type { RequestContext } from './request-context';
import { ADMIN_UI_PATH } from './routes/admin.routes';

/** body-parser's failures, in the words of DESIGN.md's error codes. */
function fromBodyParser(err: { type?: string; message?: string; limit?: number }): VisionqError | undefined {
  switch (err.type) {
    case 'entity.parse.failed':
      return new VisionqError(ErrorCode.InvalidRequest, `malformed JSON: ${err.message}`);
    case 'entity.too.large':
      return new VisionqError(ErrorCode.PayloadTooLarge, `the JSON body is over ${err.limit} bytes (MAX_JSON_BYTES)`);
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new VisionqError(ErrorCode.UnsupportedMediaType, err.message ?? 'unsupported encoding');
    case 'request.aborted':
      return new VisionqError(ErrorCode.InvalidRequest, 'the request was aborted');
    default:
      return undefined;
  }
}

/**
 * The one place a failure becomes a response: the DESIGN.md error body (from the api's
 * one function) with the status of its code. Errors visionq did not raise on purpose are
 * logged with the request id and answered as a bare internal error.
 */
export function errorHandler(logger: Logger, metrics: GatewayMetrics): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const known = err instanceof VisionqError ? err : isRedisConnectionError(err) ? redisUnavailable(err) : fromBodyParser(err as { type?: string });
    // Its lines carry the request's id (and tenant); one that failed before it had a context, the id it was answered with.
    const log = (res.locals.context as RequestContext | undefined)?.log ?? logger.child({ request_id: res.getHeader('x-request-id') });
    if (!known) {
      log.error('request failed', { method: req.method, path: req.path, error: (err as Error)?.stack ?? String(err) });
    } else if (known.code === ErrorCode.Unavailable) {
      log.warn('request refused: a dependency is unavailable', { path: req.path, error: known.message });
    }
    if (res.headersSent) {
      res.destroy(); // a stream already under way cannot turn into an error body
      return;
    }
    const body = errorBody(known);
    metrics.errors.inc({ code: body.error.code });
    if (body.status_url) res.location(body.status_url);
    if (known?.retryAfterSeconds !== undefined) res.set('retry-after', String(known.retryAfterSeconds));
    if (body.error.code === ErrorCode.Unauthorized) {
      // A browser opening the queue UI asks its user for the key only when told Basic.
      res.set('www-authenticate', req.path.startsWith(ADMIN_UI_PATH) ? 'Basic realm="visionq admin", charset="UTF-8"' : `Bearer realm="visionq"${req.get('authorization') ? ', error="invalid_token"' : ''}`);
    }
    res.status(httpStatusOf(body.error.code)).json(body);
  };
}
