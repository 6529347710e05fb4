import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { modelLabels, UnavailableError, VisionqError } from '@visionq/api';
import { loadConfig } from '@visionq/config';
import { configureDecoder } from '@visionq/imaging';
import { ConcurrencyGate, ImagePipeline, openClassifier } from '@visionq/inference';
import { watchModels } from '@visionq/models';
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
  const refused = (dir: string, err: Error) => logger.error('model folder refused; what was served from it stays', { dir, error: err.message });
  const { registry, classifier, reload, close: closeClassifier } = await openClassifier(config, {
    logger,
    onRefused: refused,
    only: config.worker.models.length > 0 ? config.worker.models : undefined,
    onBatch: (ref, size, seconds) => {
      const labels = modelLabels(ref);
      metrics.batchSize.observe(labels, size);
      metrics.batchFill.observe(labels, size / maxBatchOf(ref));
      metrics.inferenceSeconds.observe(labels, seconds);
      metrics.sessionBusySeconds.inc(labels, seconds);
    },
  });
  const maxBatchOf = (ref: string) => Math.min(config.batching.maxBatchSize, registry.get(ref).fixedBatchSize ?? Infinity);
  const pipeline = new ImagePipeline(store, classifier, new ConcurrencyGate(config.worker.fetchConcurrency), config.imaging.maxImageBytes, {
    fetched: (ref, seconds) => metrics.fetchSeconds.observe(modelLabels(ref), seconds),
    decoded: (ref, seconds) => metrics.decodeSeconds.observe(modelLabels(ref), seconds),
    failed: (ref, code) => metrics.imageErrors.inc({ ...modelLabels(ref), code }),
  });
  const tasks = openTasks(redis, config, { store, logger, onError: onRedisError });
  tasks.deadlines.start();
  const consumer = tasks.consumer(pipeline, { ...config.worker, models: registry.list().map((m) => m.ref) }, logger, metrics);
  consumer.start();
  const startedAt = new Date().toISOString();
  // What the heartbeat says: the versions whose queues this worker takes from.
  const announcement = () => {
    const models = consumer.serving();
    return { id: workerId, hostname: hostname(), pid: process.pid, models, providers: Object.fromEntries(models.map((ref) => [ref, registry.get(ref).session.provider])), startedAt };
  };
  await tasks.workers.start(announcement(), (err) => logger.warn('heartbeat failed', { error: (err as Error).message }));
  const announce = () => tasks.workers.update(announcement()).catch((err: Error) => logger.warn('heartbeat failed', { error: err.message }));

  // Hot reload: new versions load (and warm up) before their queues are taken; a removed
  // version takes its queued work to the end, then its session is released.
  const retiring = new Set<string>();
  const models = watchModels(
    config.models.dir,
    async () => {
      const { changes, added, gone } = await reload();
      for (const { dir, error } of changes.refused) refused(dir, error);
      for (const ref of added) {
        consumer.serve(ref);
        logger.info('model version serving', modelLabels(ref));
      }
      if (added.length > 0) await announce();
      for (const ref of gone.filter((r) => !retiring.has(r))) {
        retiring.add(ref);
        logger.info('model version removed: taking its queued work, then releasing it', modelLabels(ref));
        void (async () => {
          if (await consumer.retire(ref, () => !registry.catalog.has(ref))) {
            await registry.remove(ref);
            await announce();
          }
        })()
          .catch((err: Error) => logger.error('model version retirement failed', { ...modelLabels(ref), error: err.message }))
          .finally(() => retiring.delete(ref));
      }
    },
    { watch: config.models.watch, debounceMs: config.models.reloadDebounceMs, onError: (err) => logger.error('model reload failed', { error: err.message }) },
  );
  process.on('SIGHUP', () => {
    logger.info('SIGHUP: reloading models');
    void models.reload();
  });
  const metricsServer = config.worker.metricsPort > 0 ? await serveMetrics(metrics.registry, config.worker.metricsPort) : undefined;
  logger.info('worker ready', { models: consumer.serving(), metrics_port: config.worker.metricsPort || undefined, chunk_concurrency: config.worker.chunkConcurrency, fetch_concurrency: config.worker.fetchConcurrency });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping: no new chunks, finishing those in flight', { signal });
    models.close();
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
