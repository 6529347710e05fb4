/** When and how often a request answered 503 or 429 is sent again. */
export interface RetryPolicy {
  /** Attempts in all, the first included (default 5). */
  maxAttempts: number;
  /** Wait before the second attempt, doubled for each next one, with jitter (default 250 ms). */
  backoffMs: number;
  /** The longest wait; a `Retry-After` asking for more gives up at once instead (default 30 s). */
  maxBackoffMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 5, backoffMs: 250, maxBackoffMs: 30_000 };

/**
 * Milliseconds to wait before attempt `attempt + 1`: the server's `Retry-After` (seconds or
 * an HTTP date) when it sent one, else exponential backoff with jitter. `null`: do not retry.
 */
export function retryDelayMs(policy: RetryPolicy, attempt: number, retryAfter: string | null, now = Date.now()): number | null {
  if (attempt >= policy.maxAttempts) return null;
  const asked = parseRetryAfter(retryAfter, now);
  if (asked !== null) return asked <= policy.maxBackoffMs ? asked : null;
  const exponential = policy.backoffMs * 2 ** (attempt - 1);
  // Half fixed, half random: replicas that failed together do not come back together.
  return Math.min(policy.maxBackoffMs, exponential / 2 + Math.random() * (exponential / 2));
}

function parseRetryAfter(value: string | null, now: number): number | null {
  if (value === null || value.trim() === '') return null;
  if (/^\d+$/.test(value.trim())) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
