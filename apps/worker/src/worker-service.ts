import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { ErrorCode, VisionqError } from '@visionq/errors';
import { connectionErrorLogger, type Logger } from '@visionq/observability';
import { chunkQueueName, JobName, predictQueueName, type ChunkJobData, type ListJobData, type TaskStore } from '@visionq/tasks';
import type { ChunkProcessor } from './chunk-processor';
import type { SourceLister } from './source-lister';

export interface WorkerServiceOptions {
  /** Models whose queues this worker takes from. */
  models: string[];
  /** Batch chunks in flight at once, per model. */
  chunkConcurrency: number;
  /** `POST /predict` jobs in flight at once, per model. */
  predictConcurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  /** On close, how long chunks in flight may take to finish before they are left to other workers. */
  drainTimeoutMs: number;
}

/** Errors no retry can cure; anything else (store, Redis, inference faults, bugs) is retried. */
const TRANSIENT: readonly ErrorCode[] = [ErrorCode.Unavailable, ErrorCode.Timeout, ErrorCode.InferenceFailed, ErrorCode.Internal];

function isPermanent(err: unknown): err is VisionqError {
  return err instanceof VisionqError && !TRANSIENT.includes(err.code);
}

/**
 * The BullMQ side of a worker: one consumer per model and queue (predict, chunks). Lock
 * renewal runs on this event loop, which never blocks (decoding is on libuv, inference
 * in a session thread), so a long chunk is never taken for stalled; a dead worker's
 * chunks are, after `lockDurationMs`, and run again elsewhere.
 */
export class WorkerService {
  private readonly workers: Worker[] = [];
  private closing?: Promise<void>;
  private readonly onConsumerError: (err: Error) => void;

  constructor(
    private readonly connection: Redis,
    private readonly prefix: string,
    private readonly tasks: TaskStore,
    private readonly processor: ChunkProcessor,
    private readonly lister: SourceLister,
    private readonly options: WorkerServiceOptions,
    private readonly logger: Logger,
  ) {
    // While Redis is down every consumer reports each reconnect attempt: one line every few seconds is enough.
    this.onConsumerError = connectionErrorLogger(logger, 'queue consumer error');
  }

  start(): void {
    for (const model of this.options.models) {
      this.consume(predictQueueName(model), this.options.predictConcurrency, true);
      this.consume(chunkQueueName(model), this.options.chunkConcurrency, false);
    }
  }

  /** Takes no new job, lets those in flight finish (up to the drain timeout), then lets go. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      let timer: NodeJS.Timeout | undefined;
      const drained = Promise.all(this.workers.map((w) => w.close())).then(() => true);
      const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), this.options.drainTimeoutMs)));
      const clean = await Promise.race([drained, timedOut]);
      clearTimeout(timer);
      if (!clean) {
        this.logger.warn('chunks still running at shutdown are left to other workers', { timeout_ms: this.options.drainTimeoutMs });
        await Promise.all(this.workers.map((w) => w.close(true).catch(() => undefined)));
      }
    })();
    return this.closing;
  }

  private consume(queue: string, concurrency: number, urgent: boolean): void {
    const worker = new Worker(queue, (job: Job) => this.handle(job, urgent), {
      connection: this.connection,
      prefix: this.prefix,
      concurrency,
      lockDuration: this.options.lockDurationMs,
      stalledInterval: this.options.stalledIntervalMs,
      // A chunk may be orphaned by more than one dying worker before it completes.
      maxStalledCount: 3,
    });
    worker.on('failed', (job, err) => void this.onFailed(job, err));
    worker.on('error', this.onConsumerError);
    this.workers.push(worker);
  }

  private async handle(job: Job, urgent: boolean): Promise<unknown> {
    try {
      if (job.name === JobName.List) return await this.lister.process(job.data as ListJobData);
      const outcome = await this.processor.process(job.data as ChunkJobData, { urgent });
      // Predict waiters read the result lines from the return value; a batch chunk's are in its part.
      return urgent ? outcome.results : { status: outcome.status, succeeded: outcome.succeeded, failed: outcome.failed };
    } catch (err) {
      if (!isPermanent(err)) throw err; // BullMQ retries it with backoff
      // Running it again would fail the same way (a source the store cannot address, a
      // model gone from this worker): the task fails now rather than after every retry.
      const { taskId } = job.data as { taskId: string };
      this.logger.error('job cannot succeed; failing its task', { task_id: taskId, job_id: job.id, error: err.message });
      await this.tasks.fail(taskId, { code: err.code, message: `${job.name} ${job.id}: ${err.message}` });
      throw new UnrecoverableError(err.message);
    }
  }

  /** A job out of retries (or stalled too often) ends its task as failed. */
  private async onFailed(job: Job | undefined, err: Error): Promise<void> {
    if (!job) return;
    const data = job.data as { taskId: string };
    try {
      const final = (await job.getState()) === 'failed';
      this.logger[final ? 'error' : 'warn'](final ? 'job failed for good' : 'job failed, will retry', {
        task_id: data.taskId,
        job_id: job.id,
        attempt: job.attemptsMade,
        error: err.message,
      });
      if (!final) return;
      const code = err instanceof VisionqError ? err.code : ErrorCode.Internal;
      await this.tasks.fail(data.taskId, { code, message: `${job.name} ${job.id} failed after ${job.attemptsMade} attempts: ${err.message}` });
    } catch (failure) {
      this.logger.error('could not record a failed job', { task_id: data.taskId, error: (failure as Error).message });
    }
  }
}
