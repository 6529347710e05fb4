import type { RequestHandler } from 'express';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { ErrorCode, VisionqError } from '@visionq/api';
import type { Principal } from '@visionq/auth';
import type { RedisConnection } from '@visionq/tasks';
import { principalOf } from './authentication';

/**
 * A tenant's request rate and images per UTC day, counted in Redis so that every gateway
 * replica counts against the same budget. (Images in flight are counted by the task
 * store, atomically with a task's creation and end.) Over a limit: 429 `rate_limited`
 * with `Retry-After`, and nothing enqueued.
 */
export class TenantQuotas {
  /** One limiter per distinct limit (entries of the keys file may differ and change). */
  private readonly limiters = new Map<string, RateLimiterRedis>();

  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
  ) {}

  /** Middleware: one request of the tenant's `rate_per_s`. */
  rate(): RequestHandler {
    return (_req, res, next) => {
      const { tenant, quotas } = principalOf(res);
      if (quotas.ratePerSecond === undefined) return next();
      this.limiter('rate', quotas.ratePerSecond, 1)
        .consume(tenant, 1)
        .then(
          () => next(),
          (err: unknown) => next(refusal(err, `tenant "${tenant}" is over its rate of ${quotas.ratePerSecond} requests per second`)),
        );
    };
  }

  /** Charges `images` to the tenant's day; `refund` gives them back should the submit then fail. */
  async chargeImages(principal: Principal, images: number): Promise<{ refund(): Promise<void> }> {
    const limit = principal.quotas.imagesPerDay;
    if (limit === undefined || images === 0) return { refund: async () => undefined };
    const day = new Date().toISOString().slice(0, 10);
    // The key carries the UTC day, so each day's budget is its own; it is kept a day, then dropped.
    const limiter = this.limiter('day', limit, 86_400);
    const key = `${principal.tenant}:${day}`;
    try {
      await limiter.consume(key, images);
    } catch (err) {
      // A refused charge still counted its images: give them back, the task was not taken.
      if (err instanceof RateLimiterRes) await limiter.reward(key, images);
      throw refusal(err, `tenant "${principal.tenant}" would pass its ${limit} images per day with ${images} more`, secondsToMidnightUtc());
    }
    return { refund: async () => void (await limiter.reward(key, images)) };
  }

  private limiter(kind: string, points: number, duration: number): RateLimiterRedis {
    const name = `${kind}:${points}`;
    let limiter = this.limiters.get(name);
    if (!limiter) {
      limiter = new RateLimiterRedis({ storeClient: this.redis, keyPrefix: `${this.prefix}:quota:${name}`, points, duration });
      this.limiters.set(name, limiter);
    }
    return limiter;
  }
}

/** A limiter's refusal as 429 with its wait; anything else (Redis gone) as it is. */
function refusal(err: unknown, message: string, retryAfter?: number): unknown {
  if (!(err instanceof RateLimiterRes)) return err;
  const retryAfterSeconds = retryAfter ?? Math.max(1, Math.ceil(err.msBeforeNext / 1000));
  return new VisionqError(ErrorCode.RateLimited, `${message}; retry after ${retryAfterSeconds} s`, [{ message: 'over quota' }], { retryAfterSeconds });
}

function secondsToMidnightUtc(): number {
  const now = new Date();
  return Math.ceil((Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1) - now.getTime()) / 1000);
}
