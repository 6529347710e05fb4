import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, Worker, type Job } from 'bullmq';
import { ErrorCode, modelLabels, VisionqError } from '@visionq/api';
import type { Config } from '@visionq/config';
import { connectionErrorLogger, type Logger } from '@visionq/observability';
import type { ChunkProcessor } from './chunk.processor';
import { chunkQueueName, isRetryable, jobLogFields, JobName, PermanentJobError, predictQueueName, type ChunkJobData, type ListJobData } from './queue.jobs';
import type { RedisConnection } from './redis.connection';
import type { SourceLister } from './source.lister';
import type { TaskStore } from './task.store';

export type ConsumerOptions = Pick<Config['worker'], 'chunkConcurrency' | 'fetchConcurrency' | 'lockDurationMs' | 'stalledIntervalMs' | 'maxStalledCount' | 'drainTimeoutMs'> & {
  /** Model versions (`NAME@VERSION`) whose queues this worker takes from at start. */
  models: string[];
};

/** How often a version being retired looks whether its queues have emptied. */
const DRAIN_POLL_MS = 1_000;

/**
 * The BullMQ consumer of a worker: one per model version and queue (predict, chunks). Lock
 * renewal runs on this event loop, so a long chunk is taken for stalled only when the loop
 * is held past `lockDurationMs` (inference runs in a session thread; decoding on libuv,
 * the exact resize on this loop, an image at a time); a dead worker's chunks are, after
 * `lockDurationMs`, and run again elsewhere.
 *
 * The one place a job's failure is recorded on its task: at once when no retry can cure
 * it, or when its retries (or stalls) are used up.
 */
export class TaskConsumer {
  /** The two consumers (predict, chunks) of each version served. */
  private readonly workers = new Map<string, Worker[]>();
  private closing?: Promise<void>;
  private readonly onConsumerError: (err: Error) => void;

  constructor(
    private readonly connection: RedisConnection,
    /** BullMQ's key prefix: the deployment's key namespace. */
    private readonly prefix: string,
    private readonly tasks: TaskStore,
    private readonly processor: ChunkProcessor,
    private readonly lister: SourceLister,
    private readonly options: ConsumerOptions,
    private readonly logger: Logger,
  ) {
    // While Redis is down every consumer reports each reconnect attempt: one line every few seconds is enough.
    this.onConsumerError = connectionErrorLogger(logger, 'queue consumer error');
  }

  start(): void {
    for (const ref of this.options.models) this.serve(ref);
  }

  /** Starts taking the work of the version `ref` (loaded after start). */
  serve(ref: string): void {
    if (this.workers.has(ref) || this.closing) return;
    this.workers.set(ref, [this.consume(predictQueueName(ref), this.options.fetchConcurrency, true), this.consume(chunkQueueName(ref), this.options.chunkConcurrency, false)]);
  }

  /** The versions whose queues this worker takes from. */
  serving(): string[] {
    return [...this.workers.keys()];
  }

  /**
   * Retires the version `ref`, removed from the models directory: it goes on taking its
   * queued work (tasks accepted before gateways saw the removal) until both its queues are
   * empty, then stops, its jobs in flight finished. True then; false when the consumer closes
   * first, or `stillGone` turns false (the version came back) and it goes on serving.
   */
  async retire(ref: string, stillGone: () => boolean): Promise<boolean> {
    const workers = this.workers.get(ref);
    if (!workers) return true;
    const queues = [predictQueueName(ref), chunkQueueName(ref)].map((name) => new Queue(name, { connection: this.connection, prefix: this.prefix }));
    try {
      for (const queue of queues) queue.on('error', this.onConsumerError);
      while (!this.closing && stillGone()) {
        const left = await Promise.all(queues.map((q) => q.getJobCountByTypes('waiting', 'active', 'delayed', 'prioritized', 'waiting-children'))).then(
          (counts) => counts.reduce((a, b) => a + b, 0),
          (err: Error) => (this.onConsumerError(err), 1),
        );
        if (left === 0) break;
        await sleep(DRAIN_POLL_MS);
      }
      if (this.closing || !stillGone()) return false;
      this.workers.delete(ref);
      await Promise.all(workers.map((w) => w.close()));
      return true;
    } finally {
      await Promise.all(queues.map((q) => q.close().catch(this.onConsumerError)));
    }
  }

  /** Takes no new job, lets those in flight finish (up to the drain timeout), then lets go. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      let timer: NodeJS.Timeout | undefined;
      const workers = [...this.workers.values()].flat();
      const drained = Promise.all(workers.map((w) => w.close())).then(() => true);
      const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), this.options.drainTimeoutMs)));
      const clean = await Promise.race([drained, timedOut]);
      clearTimeout(timer);
      if (!clean) {
        this.logger.warn('chunks still running at shutdown are left to other workers', { timeout_ms: this.options.drainTimeoutMs });
        await Promise.all(workers.map((w) => w.close(true).catch(this.onConsumerError)));
      }
    })();
    return this.closing;
  }

  private consume(queue: string, concurrency: number, urgent: boolean): Worker {
    const worker = new Worker(queue, (job: Job) => this.handle(job, urgent), {
      connection: this.connection,
      prefix: this.prefix,
      concurrency,
      lockDuration: this.options.lockDurationMs,
      stalledInterval: this.options.stalledIntervalMs,
      maxStalledCount: this.options.maxStalledCount,
    });
    worker.on('failed', (job, err) => void this.onFailed(job, err));
    worker.on('error', this.onConsumerError);
    return worker;
  }

  private async handle(job: Job, urgent: boolean): Promise<unknown> {
    try {
      if (job.name === JobName.List) return await this.lister.process(job.data as ListJobData);
      const outcome = await this.processor.process(job.data as ChunkJobData, { urgent });
      // Predict waiters read the result lines from the return value; a batch chunk's are in its part.
      return urgent ? outcome.results : { status: outcome.status, succeeded: outcome.succeeded, failed: outcome.failed };
    } catch (err) {
      if (isRetryable(err)) throw err; // BullMQ retries it with backoff
      const { code, message } = err as VisionqError;
      throw new PermanentJobError(code, message);
    }
  }

  /**
   * A job out of retries, stalled too often, or that no retry can cure, is kept on its task
   * with why (for `POST /tasks/:id/retry`); the task goes on with its other chunks and ends
   * `failed` once they are in.
   */
  private async onFailed(job: Job | undefined, err: Error): Promise<void> {
    if (!job) return;
    const data = job.data as ChunkJobData | ListJobData;
    const taskId = data.taskId;
    const log = this.logger.child({ ...jobLogFields(data), ...modelLabels(data.model), job_id: job.id });
    try {
      if ((await job.getState()) !== 'failed') {
        log.warn('job failed, will retry', { attempt: job.attemptsMade, error: err.message });
        return;
      }
      const permanent = err instanceof PermanentJobError;
      const code = permanent ? err.code : err instanceof VisionqError ? err.code : ErrorCode.Internal;
      // What the task view shows: visionq's own message, never the text of an unexpected error (paths, hosts); that goes to the log.
      const shown = permanent || err instanceof VisionqError ? err.message : `unexpected ${(err as NodeJS.ErrnoException).code ?? err.name} on a worker; its log has the details (job ${job.id})`;
      const failure = { attempts: job.attemptsMade, error: { code, message: shown }, failed_at: new Date().toISOString() };
      const outcome =
        job.name === JobName.List ? await this.tasks.failListing(taskId, failure, job.data as ListJobData) : await this.tasks.failChunk(taskId, failure, job.data as ChunkJobData);
      log.error(permanent ? 'job cannot succeed; kept on its task for a retry' : 'job used up its attempts; kept on its task for a retry', {
        attempt: job.attemptsMade,
        error: err.message,
        outcome,
      });
    } catch (failure) {
      log.error('could not record a failed job', { error: (failure as Error).message });
    }
  }
}
