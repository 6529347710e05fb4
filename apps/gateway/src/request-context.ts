import { randomUUID } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import type { GatewayMetrics, Logger } from '@visionq/observability';
import { principalOf } from './authentication';

/** A request's id (the client's `X-Request-Id`, or a new one) and the logger whose every line carries it, and its tenant once known. */
export interface RequestContext {
  id: string;
  log: Logger;
}

const QUIET_ROUTES = ['/healthz', '/readyz', '/metrics'];

export function requestContext(res: Response): RequestContext {
  return res.locals.context as RequestContext;
}

/**
 * Gives each request its context and answers its id in `X-Request-Id`; when it ends, one
 * access line (at `info`, the fields a log stack indexes) and its metrics. The route's
 * pattern, not the path, labels both: task ids must not become label values.
 */
export function withRequestContext(logger: Logger, metrics: GatewayMetrics): RequestHandler {
  return (req, res, next) => {
    const id = req.get('x-request-id') ?? randomUUID();
    res.setHeader('x-request-id', id);
    res.locals.context = { id, log: logger.child({ request_id: id }) } satisfies RequestContext;
    const started = performance.now();
    res.on('finish', () => {
      const seconds = (performance.now() - started) / 1000;
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      metrics.requests.inc({ method: req.method, route, status: String(res.statusCode) });
      metrics.requestSeconds.observe({ method: req.method, route }, seconds);
      // Probes and scrapes come every few seconds: their lines only when debugging.
      const level = QUIET_ROUTES.includes(route) ? 'debug' : 'info';
      requestContext(res).log.log(level, 'request', { method: req.method, route, path: req.path, status: res.statusCode, ms: Math.round(seconds * 1000) });
    });
    next();
  };
}

/** After authentication: every line of the request also names its tenant. */
export const tagTenant: RequestHandler = (_req, res, next) => {
  const context = requestContext(res);
  context.log = context.log.child({ tenant: principalOf(res).tenant });
  next();
};
