import express, { type Express } from 'express';
import { ErrorCode, VisionqError } from '@visionq/api';
import type { ApiKeyStore } from '@visionq/auth';
import type { ModelCatalog } from '@visionq/models';
import type { GatewayMetrics, Logger } from '@visionq/observability';
import type { Tasks } from '@visionq/tasks';
import { authenticate } from './authentication';
import { errorHandler } from './error-handler';
import { tagTenant, withRequestContext } from './request-context';
import { limitJsonDepth, refuseContentEncodings } from './request-limits';
import type { AdminQueues } from './routes/admin.routes';
import { batchRoutes } from './routes/batch.routes';
import { consoleRoutes } from './routes/console.routes';
import { docsRoutes } from './routes/docs.routes';
import { predictRoutes } from './routes/predict.routes';
import { healthRoute, systemRoutes, type ReadinessProbes } from './routes/system.routes';
import { tasksRoutes } from './routes/tasks.routes';
import type { SubmissionService } from './submission.service';
import type { TenantQuotas } from './tenant-quotas';

export interface AppParts {
  logger: Logger;
  /** null: no keys, every request acts for the one open tenant. */
  keys: ApiKeyStore | null;
  metrics: GatewayMetrics;
  catalog: ModelCatalog;
  tasks: Tasks;
  submissions: SubmissionService;
  quotas: TenantQuotas;
  probes: ReadinessProbes;
  /** What the queue UI at /admin/queues shows. */
  adminQueues: AdminQueues;
  /** Largest and deepest JSON body (MAX_JSON_BYTES, MAX_JSON_DEPTH) and the inline results limit (INLINE_RESULTS_LIMIT). */
  limits: { maxJsonBytes: number; maxJsonDepth: number; inlineResultsLimit: number; heartbeatMs: number };
}

/** The gateway's HTTP surface: every route of DESIGN.md, one error shape. */
export function createApp(parts: AppParts): Express {
  const { logger, metrics } = parts;
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  app.use(withRequestContext(logger, metrics));
  app.use(healthRoute());
  app.use(docsRoutes());
  app.use(consoleRoutes(logger));
  app.use(authenticate(parts.keys));
  app.use(tagTenant);
  app.use(parts.quotas.rate());
  app.use(refuseContentEncodings);
  app.use(express.json({ limit: parts.limits.maxJsonBytes, strict: false, inflate: false }));
  app.use(limitJsonDepth(parts.limits.maxJsonDepth));

  app.use(predictRoutes(parts.submissions, parts.tasks.store));
  app.use(batchRoutes(parts.submissions));
  app.use(tasksRoutes(parts.tasks, parts.catalog, { inlineResultsLimit: parts.limits.inlineResultsLimit, heartbeatMs: parts.limits.heartbeatMs }));
  app.use(parts.adminQueues.router);
  app.use(systemRoutes(parts.catalog, parts.tasks.workers, metrics, parts.probes));

  app.use((req, _res, next) => next(new VisionqError(ErrorCode.NotFound, `no route ${req.method} ${req.path}`)));
  app.use(errorHandler(logger, metrics));
  return app;
}
