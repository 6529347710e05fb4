import { once } from 'node:events';
import { loadConfig } from '@visionq/config';
import { ConfigError, UnavailableError, VisionqError } from '@visionq/errors';
import { BucketPolicy, openObjectStore } from '@visionq/object-store';
import { connectionErrorLogger, createLogger, createMetricsRegistry, GatewayMetrics } from '@visionq/observability';
import { connectRedis, IdempotencyStore, ResultStore, TaskQueue, TaskStore, TaskSubmitter, WorkerRegistry } from '@visionq/tasks';
import { createApp } from './app';
import { ModelCatalog } from './model-catalog';

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
  const { prefix } = config.redis;
  const tasks = new TaskStore(redis, prefix, config.tasks.retentionSeconds);
  const queue = new TaskQueue(redis, prefix, config.tasks.chunkAttempts, onRedisError);
  const workers = new WorkerRegistry(redis, prefix);
  const models = catalog.list().map((m) => m.name);
  const metrics = new GatewayMetrics(createMetricsRegistry('gateway'), {
    backlog: async () => Object.fromEntries(await Promise.all(models.map(async (m) => [m, await queue.backlog(m)] as const))),
    liveWorkers: async () => (await workers.live()).length,
  });
  const app = createApp({
    config,
    logger,
    redis,
    store,
    buckets,
    catalog,
    tasks,
    submitter: new TaskSubmitter(tasks, queue, config.tasks.chunkSize),
    results: new ResultStore(store, tasks),
    idempotency: new IdempotencyStore(redis, prefix, config.tasks.retentionSeconds),
    workers,
    metrics,
  });

  const server = app.listen(config.server.port);
  await once(server, 'listening');
  logger.info('gateway listening', { port: config.server.port, models: catalog.list().map((m) => m.name), store: config.store.kind });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal });
    server.close(async () => {
      await queue.close();
      store.close();
      await redis.quit().catch(() => undefined);
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
