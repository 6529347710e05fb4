import { once } from 'node:events';
import { hostname } from 'node:os';
import { ConfigError, modelLabels, UnavailableError, VisionqError } from '@visionq/api';
import { AccessPolicy, ApiKeyStore } from '@visionq/auth';
import { CallbackService } from '@visionq/callbacks';
import { loadConfig, type Config } from '@visionq/config';
import { ModelCatalog, watchModels, type RefusedFolder } from '@visionq/models';
import { BucketPolicy, openObjectStore } from '@visionq/object-store';
import { connectionErrorLogger, createLogger, createMetricsRegistry, GatewayMetrics, type Logger } from '@visionq/observability';
import { connectRedis, openTasks } from '@visionq/tasks';
import { createApp } from './app';
import { createHttpServer } from './http-server';
import { registeredRoutes } from './route-list';
import { AdminQueues } from './routes/admin.routes';
import { SubmissionService } from './submission.service';
import { TenantQuotas } from './tenant-quotas';

/** The gateway: reads config, builds the parts, serves until SIGTERM. */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger({ level: config.log.level, format: config.log.format, defaultMeta: { service: 'gateway' } });
  const buckets = new BucketPolicy(config.store.allowedBuckets);
  for (const [name, uri] of [['UPLOADS_URI', config.store.uploadsUri], ['RESULTS_URI', config.store.resultsUri]] as const) {
    if (!buckets.allows(uri)) throw new ConfigError(`${name}=${uri} is in a bucket ALLOWED_BUCKETS does not list`, [{ field: name, message: 'bucket not allowed' }]);
  }
  const keys = await openKeys(config, logger);
  const refused = ({ dir, error }: RefusedFolder) => logger.error('model folder refused; what was served from it stays', { dir, error: error.message });
  const catalog = await ModelCatalog.load(config.models.dir, config.models.defaultModel, refused);
  const onRedisError = connectionErrorLogger(logger, 'Redis connection error');
  const redis = await connectRedis(config.redis.url, { failFast: true, onError: onRedisError });
  const store = openObjectStore(config.store);
  const tasks = openTasks(redis, config, { store, logger, onError: onRedisError });
  tasks.deadlines.start();
  const quotas = new TenantQuotas(redis, tasks.keys.prefix);
  const secretsOf = (tenant: string) => (keys ? keys.webhookSecretsOf(tenant) : config.callbacks.webhookSecret ? [config.callbacks.webhookSecret] : []);
  const refs = () => catalog.all().map((m) => m.ref);
  // Removed versions whose queued work the workers still finish: their backlog stays reported
  // (an autoscaler must not scale their workers away) until it reads empty.
  const draining = new Set<string>();
  const metrics = new GatewayMetrics(createMetricsRegistry('gateway'), {
    backlog: async () => {
      const entries = await Promise.all(
        [...new Set([...refs(), ...draining])].map(async (m) => {
          const { images, oldestMs } = await tasks.store.backlog(m);
          if (images === 0) draining.delete(m);
          return [m, { images, oldestAgeSeconds: oldestMs === null ? null : Math.max(0, (Date.now() - oldestMs) / 1000) }] as const;
        }),
      );
      return Object.fromEntries(entries);
    },
    liveWorkers: async () => {
      const live = await tasks.workers.live();
      return { total: live.length, byModel: Object.fromEntries(refs().map((m) => [m, live.filter((w) => w.models.includes(m)).length])) };
    },
    pingRedis: () => redis.ping(),
  });
  const callbacks = new CallbackService(redis, tasks.keys, tasks.store, secretsOf, config.callbacks, `gateway-${hostname()}-${process.pid}`, logger, (outcome) =>
    metrics.callbacks.inc({ outcome }),
  );
  callbacks.start();
  let stopping = false;
  const adminQueues = new AdminQueues([...tasks.queue.queuesOf(refs()), callbacks.queue]);
  const app = createApp({
    logger,
    keys,
    metrics,
    catalog,
    tasks,
    submissions: new SubmissionService(catalog, new AccessPolicy(buckets, config.store), store, tasks.submitter, quotas, { allowedHosts: config.callbacks.allowedHosts, secretsOf }, { ...config.tasks, ...config.imaging }, metrics, logger),
    quotas,
    adminQueues,
    probes: { redis: () => redis.ping(), store: () => store.list(config.store.resultsUri, { limit: 1 }), draining: () => stopping },
    limits: { maxJsonBytes: config.server.maxJsonBytes, maxJsonDepth: config.server.maxJsonDepth, inlineResultsLimit: config.tasks.inlineResultsLimit, heartbeatMs: config.server.eventsHeartbeatMs },
  });

  const server = createHttpServer(app, config.server, logger, metrics);
  server.listen(config.server.port, config.server.host);
  await once(server, 'listening');
  logger.info('gateway listening', { host: config.server.host, port: config.server.port, models: refs(), store: config.store.kind, routes: registeredRoutes(app) });

  // Hot reload: requests may name new versions at once; removed ones are refused from now on
  // (their queued work is finished by the workers that have them loaded).
  const models = watchModels(
    config.models.dir,
    async () => {
      const changes = await catalog.reload();
      changes.refused.forEach(refused);
      for (const f of changes.added) logger.info('model version added', modelLabels(f.ref));
      for (const f of changes.replaced) logger.info('model version changed', modelLabels(f.ref));
      for (const f of changes.removed) {
        logger.info('model version removed', modelLabels(f.ref));
        draining.add(f.ref);
      }
      for (const [name, version] of changes.defaults) logger.info('default version changed', { model: name, version });
      if (changes.removed.length > 0 && !catalog.all().some((f) => f.name === catalog.defaultModel || f.ref === catalog.defaultModel)) {
        logger.warn('DEFAULT_MODEL is no longer served: requests that name no model are refused', { default_model: catalog.defaultModel });
      }
      if (changes.added.length + changes.removed.length > 0) adminQueues.replace([...tasks.queue.queuesOf(refs()), callbacks.queue]);
    },
    { watch: config.models.watch, debounceMs: config.models.reloadDebounceMs, onError: (err) => logger.error('model reload failed', { error: err.message }) },
  );
  process.on('SIGHUP', () => {
    logger.info('SIGHUP: reloading models');
    void models.reload();
  });

  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    models.close();
    // Not ready from now on; serving on for GATEWAY_DRAIN_MS lets load balancers notice first.
    logger.info('stopping: readiness is false, draining', { signal, drain_ms: config.server.drainMs });
    await new Promise((resolve) => setTimeout(resolve, config.server.drainMs));
    server.close(async () => {
      keys?.close();
      await callbacks.close();
      await tasks.close();
      store.close();
      await redis.quit().catch((err: Error) => logger.warn('Redis did not take the quit; the connection is dropped', { error: err.message }));
      process.exit(0);
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

/**
 * The keys of API_KEYS_FILE; or none, which is safe by default only on a loopback HOST:
 * anywhere else the gateway refuses to start unless AUTH=none says so knowingly.
 */
async function openKeys(config: Config, logger: Logger): Promise<ApiKeyStore | null> {
  if (config.auth.mode === 'none') {
    if (config.auth.keysFile) throw new ConfigError('AUTH=none and API_KEYS_FILE are both set: choose one', [{ field: 'AUTH', message: 'contradicts API_KEYS_FILE' }]);
    logger.warn('serving without API keys (AUTH=none): anyone who reaches the gateway can use it', { host: config.server.host });
    return null;
  }
  if (config.auth.keysFile) return ApiKeyStore.open(config.auth.keysFile, logger);
  if (!isLoopback(config.server.host)) {
    throw new ConfigError(
      `HOST=${config.server.host} is not a loopback address and no API_KEYS_FILE is set: create keys (npx visionq keys create --tenant NAME) and set API_KEYS_FILE, or set AUTH=none to serve without keys`,
      [{ field: 'HOST', message: 'needs API_KEYS_FILE or AUTH=none' }],
    );
  }
  return null;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

main().catch((err: unknown) => {
  const message = err instanceof VisionqError ? err.message : String((err as Error)?.stack ?? err);
  process.stderr.write(`visionq gateway: ${message}\n`);
  process.exit(err instanceof UnavailableError ? 69 : 1);
});
