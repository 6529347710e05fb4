import { Redis } from 'ioredis';
import { UnavailableError } from '@visionq/api';

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
 * that Redis answers; otherwise throws one line saying how to start one.
 */
export async function connectRedis(url: string, options: RedisConnectOptions): Promise<Redis> {
  const timeoutMs = options.timeoutMs ?? 3_000;
  const probe = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null });
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
  const redis = new Redis(url, { maxRetriesPerRequest: options.failFast ? 1 : null });
  redis.on('error', options.onError);
  return redis;
}

/** A failure of the Redis connection itself (down, unreachable, reset), as opposed to a command's. */
export function isRedisConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return err.name === 'MaxRetriesPerRequestError' || /Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH/.test(err.message);
}

/** The public face of a Redis outage: 503, retry later. */
export function redisUnavailable(err: unknown): UnavailableError {
  return new UnavailableError('the task queue (Redis) is unavailable; retry later', { cause: err });
}

function redact(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}
