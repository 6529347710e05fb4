import { Queue, QueueEvents } from 'bullmq';
import { PredictTimeoutError, type ImageResult } from '@visionq/api';
import { duplicateConnection, type RedisConnection } from './redis.connection';
import { chunkJobId, chunkQueueName, jobOptions, JobName, listJobId, predictQueueName, type ChunkJobData, type ListJobData } from './queue.jobs';

/**
 * The producer side of the queues: adds chunk, list and predict jobs with the default
 * options (retries, backoff, retention) of one place. Queues are opened per model on
 * first use and share the caller's connection (which may fail fast); the listeners for
 * predict results block, so each gets a connection of its own that waits through outages.
 */
export class TaskQueue {
  private readonly queues = new Map<string, Queue>();
  private readonly events = new Map<string, { events: QueueEvents; connection: RedisConnection }>();
  private closing?: Promise<void>;

  constructor(
    private readonly connection: RedisConnection,
    /** BullMQ's key prefix: the deployment's key namespace. */
    private readonly prefix: string,
    private readonly attempts: number,
    private readonly onError: (err: Error) => void,
  ) {}

  async addChunks(chunks: ChunkJobData[], priority: number): Promise<void> {
    if (chunks.length === 0) return;
    const opts = { ...jobOptions(this.attempts), priority };
    await this.queue(chunkQueueName(chunks[0]!.model)).addBulk(
      chunks.map((data) => ({ name: JobName.Chunk, data, opts: { ...opts, jobId: chunkJobId(data.taskId, data.index, data.round) } })),
    );
  }

  async addList(data: ListJobData): Promise<void> {
    await this.queue(chunkQueueName(data.model)).add(JobName.List, data, {
      ...jobOptions(this.attempts),
      priority: data.priority,
      jobId: listJobId(data.taskId, data.page, data.round),
    });
  }

  /**
   * Adds a one-image chunk to the predict queue. `wait` resolves with its result line, or
   * throws PredictTimeoutError after `timeoutMs`; the job goes on and its task can be polled.
   */
  async addPredict(data: ChunkJobData): Promise<{ wait(timeoutMs: number): Promise<ImageResult> }> {
    const name = predictQueueName(data.model);
    const events = await this.queueEvents(name);
    const job = await this.queue(name).add(JobName.Chunk, data, { ...jobOptions(this.attempts), jobId: chunkJobId(data.taskId, data.index) });
    return {
      async wait(timeoutMs) {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new PredictTimeoutError(`no result within PREDICT_TIMEOUT_MS=${timeoutMs}; the task goes on: poll status_url`, data.taskId)), timeoutMs);
        });
        try {
          const lines = (await Promise.race([job.waitUntilFinished(events), timeout])) as ImageResult[];
          return lines[0]!;
        } finally {
          clearTimeout(timer);
        }
      },
    };
  }

  /** The chunk and predict queues of `models`, for a queue UI to show. */
  queuesOf(models: string[]): Queue[] {
    return models.flatMap((model) => [this.queue(chunkQueueName(model)), this.queue(predictQueueName(model))]);
  }

  /** Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      // Each step on its own: one that fails (Redis gone) is reported and the rest still close.
      for (const { events, connection } of this.events.values()) {
        await events.close().catch(this.onError);
        connection.disconnect();
      }
      for (const queue of this.queues.values()) await queue.close().catch(this.onError);
    })();
    return this.closing;
  }

  private queue(name: string): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: this.connection, prefix: this.prefix });
      queue.on('error', this.onError);
      this.queues.set(name, queue);
    }
    return queue;
  }

  private async queueEvents(name: string): Promise<QueueEvents> {
    let entry = this.events.get(name);
    if (!entry) {
      const connection = duplicateConnection(this.connection, { maxRetriesPerRequest: null });
      connection.on('error', this.onError);
      const events = new QueueEvents(name, { connection, prefix: this.prefix });
      events.on('error', this.onError);
      entry = { events, connection };
      this.events.set(name, entry);
      await events.waitUntilReady();
    }
    return entry.events;
  }
}
