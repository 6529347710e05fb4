import { once } from 'node:events';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { ConfigError, UnavailableError } from '@visionq/api';
import { parseRedisUrl, type RedisTarget } from '@visionq/config';

/** What REDIS_URL opens: one server (directly or through Sentinels) or a Redis Cluster. */
export type RedisConnection = Redis | Cluster;

export interface RedisConnectOptions {
  /**
   * Fail a command after one reconnect attempt instead of waiting for Redis to come back:
   * a gateway answers 503 at once. Workers wait (and BullMQ needs them to).
   */
  failFast: boolean;
  /** Connection errors (every reconnect attempt while Redis is down); they must not go unheard. */
  onError: (err: Error) => void;
  /** Bound on the first connection. Default 3 s. */
  timeoutMs?: number;
}

/**
 * Opens the connection queues and task records share, after checking in bounded time
 * that Redis answers; otherwise throws one line saying how to start one. `url` is any
 * REDIS_URL form (see @visionq/config's parseRedisUrl).
 */
export async function connectRedis(url: string, options: RedisConnectOptions): Promise<RedisConnection> {
  let target: RedisTarget;
  try {
    target = parseRedisUrl(url);
  } catch (err) {
    throw new ConfigError(`REDIS_URL=${redact(url)} is invalid: ${(err as Error).message}`, [{ field: 'REDIS_URL', message: (err as Error).message }]);
  }
  const timeoutMs = options.timeoutMs ?? 3_000;
  const probe = open(target, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null }, 'probe');
  // The socket's own error (ECONNREFUSED, …) says more than connect()'s "Connection is closed".
  let cause: Error | undefined;
  probe.on('error', (err: Error) => (cause ??= err));
  try {
    await probe.connect();
    await probe.ping();
  } catch (err) {
    const why = cause ?? (err as Error);
    throw new UnavailableError(
      `Redis at ${redact(url)} does not answer (${why.message}); start one with \`redis-server --daemonize yes\` or point REDIS_URL at yours`,
      { cause: why },
    );
  } finally {
    probe.disconnect();
  }
  const redis = open(target, { maxRetriesPerRequest: options.failFast ? 1 : null }, options.failFast ? 'fail-fast' : 'wait');
  redis.on('error', options.onError);
  // Without its offline queue, a fail-fast Cluster refuses commands until it is ready: be ready first.
  if (redis instanceof Cluster && redis.status !== 'ready') await once(redis, 'ready', { signal: AbortSignal.timeout(timeoutMs) });
  return redis;
}

/**
 * Another connection to the same Redis with `override` applied: a blocking reader's own,
 * which waits through outages. A Cluster takes its per-node options under `redisOptions`
 * (a server at the top level), and queues commands while it reconnects.
 */
export function duplicateConnection(redis: RedisConnection, override: Partial<RedisOptions>): RedisConnection {
  if (redis instanceof Cluster) return redis.duplicate(undefined, { enableOfflineQueue: true, redisOptions: { ...redis.options.redisOptions, ...override } });
  return redis.duplicate(override);
}

/**
 * `probe`: one try, no reconnecting. `fail-fast`: commands fail while Redis is unreachable
 * (a Cluster's own offline queue would hold them until it is back, whatever the per-node
 * retries). `wait`: commands wait for Redis.
 */
function open(target: RedisTarget, options: RedisOptions, mode: 'probe' | 'fail-fast' | 'wait'): RedisConnection {
  switch (target.kind) {
    case 'server':
      return new Redis(target.url, options);
    case 'cluster': {
      const { lazyConnect, ...redisOptions } = options;
      return new Cluster(target.nodes, {
        lazyConnect,
        redisOptions: { ...redisOptions, username: target.username, password: target.password },
        ...(mode === 'probe' ? { clusterRetryStrategy: () => null } : {}),
        ...(mode === 'fail-fast' ? { enableOfflineQueue: false } : {}),
      });
    }
    case 'sentinel':
      return new Redis({
        ...options,
        sentinels: target.sentinels,
        name: target.masterName,
        db: target.db,
        username: target.username,
        password: target.password,
        ...(mode === 'probe' ? { sentinelRetryStrategy: () => null } : {}),
      });
  }
}

/** A failure of the Redis connection itself (down, unreachable, reset), as opposed to a command's. */
export function isRedisConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  // The last three: a Cluster that is unreachable as a whole (no node answers, or its slots are not all served).
  return err.name === 'MaxRetriesPerRequestError' || /Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|Cluster isn't ready|None of startup nodes is available|CLUSTERDOWN/.test(err.message);
}

/** The public face of a Redis outage: 503, retry later. */
export function redisUnavailable(err: unknown): UnavailableError {
  return new UnavailableError('the task queue (Redis) is unavailable; retry later', { cause: err });
}

function redact(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}
