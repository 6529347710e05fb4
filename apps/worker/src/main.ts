import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { UnavailableError, VisionqError } from '@visionq/api';
import { loadConfig } from '@visionq/config';
import { configureDecoder } from '@visionq/imaging';
import { ConcurrencyGate, ImagePipeline, openClassifier } from '@visionq/inference';
import { openObjectStore } from '@visionq/object-store';
import { connectionErrorLogger, createLogger, createMetricsRegistry, serveMetrics, WorkerMetrics } from '@visionq/observability';
import { connectRedis, openTasks } from '@visionq/tasks';

/** One worker replica: reads config, builds the parts, takes chunks until SIGTERM. */
async function main(): Promise<void> {
  const config = loadConfig();
  const workerId = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const logger = createLogger({ level: config.log.level, format: config.log.format, defaultMeta: { service: 'worker', worker_id: workerId } });
  configureDecoder({ threadsPerImage: 1, concurrentDecodes: config.imaging.threads });

  const onRedisError = connectionErrorLogger(logger, 'Redis connection error');
  const redis = await connectRedis(config.redis.url, { failFast: false, onError: onRedisError });
  const store = openObjectStore(config.store);
  const metrics = new WorkerMetrics(createMetricsRegistry('worker'));
  const { registry, classifier, close: closeClassifier } = await openClassifier(config, {
    logger,
    only: config.worker.models.length > 0 ? config.worker.models : undefined,
    onBatch: (model, size, seconds) => {
      metrics.batchSize.observe({ model }, size);
      metrics.batchFill.observe({ model }, size / maxBatchOf(model));
      metrics.inferenceSeconds.observe({ model }, seconds);
      metrics.sessionBusySeconds.inc({ model }, seconds);
    },
  });
  const maxBatchOf = (model: string) => Math.min(config.batching.maxBatchSize, registry.get(model).fixedBatchSize ?? Infinity);
  const pipeline = new ImagePipeline(store, classifier, new ConcurrencyGate(config.worker.fetchConcurrency), config.imaging.maxImageBytes, {
    fetched: (model, seconds) => metrics.fetchSeconds.observe({ model }, seconds),
    decoded: (model, seconds) => metrics.decodeSeconds.observe({ model }, seconds),
    failed: (model, code) => metrics.imageErrors.inc({ model, code }),
  });
  const tasks = openTasks(redis, config, { store, logger, onError: onRedisError });
  tasks.deadlines.start();
  const models = registry.list().map((m) => m.name);
  const consumer = tasks.consumer(pipeline, { ...config.worker, models }, logger, metrics);
  consumer.start();
  await tasks.workers.start(
    {
      id: workerId,
      hostname: hostname(),
      pid: process.pid,
      models,
      providers: Object.fromEntries(registry.list().map((m) => [m.name, m.session.provider])),
      startedAt: new Date().toISOString(),
    },
    (err) => logger.warn('heartbeat failed', { error: (err as Error).message }),
  );
  const metricsServer = config.worker.metricsPort > 0 ? await serveMetrics(metrics.registry, config.worker.metricsPort) : undefined;
  logger.info('worker ready', { models, metrics_port: config.worker.metricsPort || undefined, chunk_concurrency: config.worker.chunkConcurrency, fetch_concurrency: config.worker.fetchConcurrency });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping: no new chunks, finishing those in flight', { signal });
    await consumer.close();
    metricsServer?.close();
    await tasks.workers.stop(workerId).catch((err: Error) => logger.warn('could not withdraw the heartbeat; it expires by itself', { error: err.message }));
    await closeClassifier();
    await tasks.close();
    store.close();
    await redis.quit().catch((err: Error) => logger.warn('Redis did not take the quit; the connection is dropped', { error: err.message }));
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err: unknown) => {
  // Start-up problems (Redis down, bad config, bad model) are one line, not a stack.
  const message = err instanceof VisionqError ? err.message : String((err as Error)?.stack ?? err);
  process.stderr.write(`visionq worker: ${message}\n`);
  process.exit(err instanceof UnavailableError ? 69 : 1);
});
