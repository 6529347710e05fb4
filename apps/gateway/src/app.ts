import { randomUUID } from 'node:crypto';
import express, { type Express } from 'express';
import { ErrorCode, VisionqError } from '@visionq/errors';
import { errorHandler } from './error-handler';
import type { GatewayDeps } from './gateway-deps';
import { batchRoutes } from './routes/batch.routes';
import { predictRoutes } from './routes/predict.routes';
import { systemRoutes } from './routes/system.routes';
import { tasksRoutes } from './routes/tasks.routes';

/** The gateway's HTTP surface: every route of DESIGN.md, one error shape. */
export function createApp(deps: GatewayDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  app.use((req, res, next) => {
    const id = req.get('x-request-id') ?? randomUUID();
    res.setHeader('x-request-id', id);
    const started = performance.now();
    res.on('finish', () => {
      const seconds = (performance.now() - started) / 1000;
      // The route's pattern, not the path: task ids must not become label values.
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      deps.metrics.requests.inc({ method: req.method, route, status: String(res.statusCode) });
      deps.metrics.requestSeconds.observe({ method: req.method, route }, seconds);
      deps.logger.debug('request', { request_id: id, method: req.method, path: req.path, status: res.statusCode, ms: Math.round(seconds * 1000) });
    });
    next();
  });
  app.use(express.json({ limit: deps.config.server.maxJsonBytes, strict: false }));

  app.use(predictRoutes(deps));
  app.use(batchRoutes(deps));
  app.use(tasksRoutes(deps));
  app.use(systemRoutes(deps));

  app.use((req, _res, next) => next(new VisionqError(ErrorCode.NotFound, `no route ${req.method} ${req.path}`)));
  app.use(errorHandler(deps.logger));
  return app;
}
