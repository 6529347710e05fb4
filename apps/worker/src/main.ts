import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { loadConfig } from '@visionq/config';
import { UnavailableError, VisionqError } from '@visionq/errors';
import { configureDecoder, ImagePreprocessor } from '@visionq/imaging';
import { ImageClassifier, InferenceEngine, ModelRegistry } from '@visionq/inference';
import { openObjectStore } from '@visionq/object-store';
import { connectionErrorLogger, createLogger, createMetricsRegistry, WorkerMetrics } from '@visionq/observability';
import { connectRedis, ResultStore, TaskQueue, TaskStore, WorkerRegistry } from '@visionq/tasks';
import { ChunkProcessor } from './chunk-processor';
import { ConcurrencyGate } from './concurrency-gate';
import { ImagePipeline } from './image-pipeline';
import { serveMetrics } from './metrics-server';
import { SourceLister } from './source-lister';
import { WorkerService } from './worker-service';

/** How long SIGTERM waits for chunks in flight before leaving them to other workers. */
const DRAIN_TIMEOUT_MS = 60_000;

/** One worker replica: reads config, builds the parts, takes chunks until SIGTERM. */
async function main(): Promise<void> {
  const config = loadConfig();
  const workerId = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const logger = createLogger({ level: config.log.level, format: config.log.format, defaultMeta: { service: 'worker', worker_id: workerId } });
  configureDecoder({ threadsPerImage: 1 });

  const onRedisError = connectionErrorLogger(logger, 'Redis connection error');
  const redis = await connectRedis(config.redis.url, { failFast: false, onError: onRedisError });
  const store = openObjectStore(config.store);
  const registry = await ModelRegistry.load(config.models.dir, config.inference, {
    only: config.worker.models.length > 0 ? config.worker.models : undefined,
    logger,
  });
  const metrics = new WorkerMetrics(createMetricsRegistry('worker'));
  const engine = new InferenceEngine(registry, {
    batching: config.batching,
    warmup: config.inference.warmup,
    logger,
    upcoming: (model) => pipeline.upcoming(model),
    onBatch: (model, size, seconds) => {
      metrics.batchSize.observe({ model }, size);
      metrics.inferenceSeconds.observe({ model }, seconds);
    },
  });
  await engine.start();

  const { prefix } = config.redis;
  const tasks = new TaskStore(redis, prefix, config.tasks.retentionSeconds);
  const queue = new TaskQueue(redis, prefix, config.tasks.chunkAttempts, onRedisError);
  const classifier = new ImageClassifier(registry, new ImagePreprocessor(config.imaging), engine);
  const pipeline = new ImagePipeline(store, classifier, new ConcurrencyGate(config.worker.fetchConcurrency), config.imaging.maxImageBytes);
  const processor = new ChunkProcessor(tasks, new ResultStore(store, tasks), pipeline, logger, metrics);
  const lister = new SourceLister(store, tasks, queue, { pageSize: config.tasks.listPageSize, chunkSize: config.tasks.chunkSize }, logger);
  const models = registry.list().map((m) => m.name);
  const service = new WorkerService(
    redis,
    prefix,
    tasks,
    processor,
    lister,
    {
      models,
      chunkConcurrency: config.worker.chunkConcurrency,
      predictConcurrency: config.worker.fetchConcurrency,
      lockDurationMs: config.worker.lockDurationMs,
      stalledIntervalMs: config.worker.stalledIntervalMs,
      drainTimeoutMs: DRAIN_TIMEOUT_MS,
    },
    logger,
  );
  service.start();
  const heartbeat = new WorkerRegistry(redis, prefix);
  await heartbeat.start(
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
    await service.close();
    metricsServer?.close();
    await heartbeat.stop(workerId).catch(() => undefined);
    await engine.stop();
    await registry.release();
    await queue.close();
    store.close();
    await redis.quit().catch(() => undefined);
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
