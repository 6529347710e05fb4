import { Redis } from 'ioredis';
import { UnavailableError } from '@visionq/errors';

/**
 * Opens the connection queues and task records share, after checking in bounded time
 * that Redis answers; otherwise throws one line saying how to start one. BullMQ needs
 * `maxRetriesPerRequest: null` (commands wait through reconnects instead of failing).
 */
export async function connectRedis(url: string, timeoutMs = 3_000): Promise<Redis> {
  const probe = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined); // reported through connect() below
  try {
    await probe.connect();
    await probe.ping();
  } catch (err) {
    throw new UnavailableError(
      `Redis at ${redact(url)} does not answer (${(err as Error).message}); start one with \`redis-server --daemonize yes\` or point REDIS_URL at yours`,
      { cause: err },
    );
  } finally {
    probe.disconnect();
  }
  return new Redis(url, { maxRetriesPerRequest: null });
}

function redact(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}
