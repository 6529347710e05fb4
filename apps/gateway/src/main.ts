import { once } from 'node:events';
import { ConfigError, UnavailableError, VisionqError } from '@visionq/api';
import { loadConfig } from '@visionq/config';
import { ModelCatalog } from '@visionq/models';
import { BucketPolicy, openObjectStore } from '@visionq/object-store';
import { connectionErrorLogger, createLogger, createMetricsRegistry, GatewayMetrics } from '@visionq/observability';
import { connectRedis, openTasks } from '@visionq/tasks';
import { createApp } from './app';
import { createHttpServer } from './http-server';
import { SubmissionService } from './submission.service';

/** The gateway: reads config, builds the parts, serves until SIGTERM. */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger({ level: config.log.level, format: config.log.format, defaultMeta: { service: 'gateway' } });
  const buckets = new BucketPolicy(config.store.allowedBuckets);
  for (const [name, uri] of [['UPLOADS_URI', config.store.uploadsUri], ['RESULTS_URI', config.store.resultsUri]] as const) {
    if (!buckets.allows(uri)) throw new ConfigError(`${name}=${uri} is in a bucket ALLOWED_BUCKETS does not list`, [{ field: name, message: 'bucket not allowed' }]);
  }
  const catalog = await ModelCatalog.load(config.models.dir, config.models.defaultModel);
  const onRedisError = connectionErrorLogger(logger, 'Redis connection error');
  const redis = await connectRedis(config.redis.url, { failFast: true, onError: onRedisError });
  const store = openObjectStore(config.store);
  const tasks = openTasks(redis, config, { store, onError: onRedisError });
  const models = catalog.list().map((m) => m.name);
  const metrics = new GatewayMetrics(createMetricsRegistry('gateway'), {
    backlog: async () => Object.fromEntries(await Promise.all(models.map(async (m) => [m, await tasks.queue.backlog(m)] as const))),
    liveWorkers: async () => (await tasks.workers.live()).length,
  });
  const app = createApp({
    logger,
    metrics,
    catalog,
    tasks,
    submissions: new SubmissionService(catalog, buckets, store, tasks.submitter, { ...config.store, ...config.tasks, ...config.imaging }, metrics, logger),
    probes: { redis: () => redis.ping(), store: () => store.list(config.store.resultsUri, { limit: 1 }) },
    limits: { maxJsonBytes: config.server.maxJsonBytes, maxJsonDepth: config.server.maxJsonDepth, inlineResultsLimit: config.tasks.inlineResultsLimit },
  });

  const server = createHttpServer(app, config.server, logger);
  server.listen(config.server.port, config.server.host);
  await once(server, 'listening');
  logger.info('gateway listening', { host: config.server.host, port: config.server.port, models, store: config.store.kind });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal });
    server.close(async () => {
      await tasks.close();
      store.close();
      await redis.quit().catch((err: Error) => logger.warn('Redis did not take the quit; the connection is dropped', { error: err.message }));
      process.exit(0);
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  const message = err instanceof VisionqError ? err.message : String((err as Error)?.stack ?? err);
  process.stderr.write(`visionq gateway: ${message}\n`);
  process.exit(err instanceof UnavailableError ? 69 : 1);
});
