import winston from 'winston';

export type Logger = winston.Logger;

export interface LoggerOptions {
  /** Lowest level written. Default `info`. */
  level?: string;
  /** `json` (one object per line, for machines) or `pretty` (for a terminal). Default `json`. */
  format?: 'json' | 'pretty';
  /** Fields on every line, e.g. `{ service: 'worker' }`. */
  defaultMeta?: Record<string, unknown>;
  /** Write nothing (tests). Default false. */
  silent?: boolean;
}

/**
 * The one logger factory. Components receive a logger as a constructor argument and
 * add context with `logger.child({ task_id })`; nothing creates its own. Logs go to
 * stderr so that stdout stays free for a command's output.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const format =
    options.format === 'pretty'
      ? winston.format.combine(winston.format.timestamp(), winston.format.colorize(), winston.format.simple())
      : winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json());
  return winston.createLogger({
    level: options.level ?? 'info',
    format,
    defaultMeta: options.defaultMeta,
    silent: options.silent ?? false,
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'] })],
  });
}

/**
 * An error listener for a connection that retries by itself: it logs `message` at most
 * once per `intervalMs` (with how many errors came meanwhile), so an outage is one line
 * every few seconds rather than one per reconnect attempt.
 */
export function connectionErrorLogger(logger: Logger, message: string, intervalMs = 10_000): (err: Error) => void {
  let last = -Infinity;
  let suppressed = 0;
  return (err) => {
    const now = Date.now();
    if (now - last < intervalMs) {
      suppressed++;
      return;
    }
    logger.warn(message, { error: err.message, ...(suppressed > 0 ? { errors_since_last_line: suppressed } : {}) });
    last = now;
    suppressed = 0;
  };
}
