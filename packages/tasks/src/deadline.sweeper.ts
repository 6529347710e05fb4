import { ErrorCode } from '@visionq/api';
import type { Logger } from '@visionq/observability';
import type { TaskStore } from './task.store';

/** How often deadlines are looked at: a task ends within about this after its deadline. */
const SWEEP_INTERVAL_MS = 1_000;
/** Tasks ended per sweep at most; the rest wait for the next. */
const SWEEP_BATCH = 100;

/**
 * Ends tasks whose deadline (`timeout_s`) has passed: `failed` with `timeout`, their
 * committed results kept, no chunk started after (a running one stops within its cancel
 * poll). Every gateway and worker runs one: ending a task is atomic and happens once
 * whoever gets there first, so sweepers need no coordination.
 */
export class DeadlineSweeper {
  private timer?: NodeJS.Timeout;
  private sweeping?: Promise<void>;

  constructor(
    private readonly tasks: TaskStore,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void (this.sweeping ??= this.sweep().finally(() => (this.sweeping = undefined))), SWEEP_INTERVAL_MS);
    this.timer.unref();
  }

  /** Stops sweeping, after a sweep in flight. Idempotent. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.sweeping;
  }

  /** One pass; errors (Redis down) are logged and the next pass tries again. */
  async sweep(now = Date.now()): Promise<void> {
    try {
      for (const id of await this.tasks.pastDeadline(now, SWEEP_BATCH)) {
        const ended = await this.tasks.fail(id, { code: ErrorCode.Timeout, message: 'the task passed its deadline (timeout_s); results committed before it are kept' });
        // A task that had ended, or expired, without its deadline going: drop it from the set.
        if (!ended) await this.tasks.forgetDeadline(id);
        else this.logger.info('task passed its deadline', { task_id: id });
      }
    } catch (err) {
      this.logger.warn('deadline sweep failed; the next one tries again', { error: (err as Error).message });
    }
  }
}
