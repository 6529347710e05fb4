import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Config } from '@visionq/config';
import type { Logger } from '@visionq/observability';
import { duplicateConnection, taskView, type KeyNamespace, type RedisConnection, type TaskStore } from '@visionq/tasks';
import { checkCallbackUrl } from './callback-url';
import { signWebhook } from './webhook-signature';
import { postWebhook } from './webhook-post';

const QUEUE = 'callbacks';
const GROUP = 'callbacks';
/** Entries of the ended stream a crashed gateway held this long are taken over by another. */
const CLAIM_IDLE_MS = 60_000;
/** Attempts kept in the task view (the newest). */
const ATTEMPTS_SHOWN = 20;

export type CallbackSettings = Pick<Config['callbacks'], 'allowedHosts' | 'retryWindowSeconds' | 'timeoutMs' | 'backoffMs'>;

/** One try at delivering a task's callback, as `GET /tasks/:id` shows it. */
export interface CallbackAttempt {
  at: string;
  /** The receiver's HTTP status; absent when no answer came. */
  status?: number;
  latency_ms: number;
  error?: string;
}

/**
 * Delivers each task's callback once its task has ended, exactly once per task whatever the
 * number of gateways: every gateway reads the one stream of ended tasks as a member of one
 * consumer group (an entry goes to one of them, and is taken over if that one dies), and
 * turns an ended task that asked for a callback into a BullMQ job whose id is the task's,
 * so it is queued once. Delivery is that job: POST the task view, signed as Standard
 * Webhooks says, retried with exponential backoff and jitter until the receiver answers
 * 2xx or the retry window is over; every attempt is recorded on the task.
 */
export class CallbackService {
  private readonly queue: Queue;
  private worker?: Worker;
  private reader?: RedisConnection;
  private loop?: Promise<void>;
  private closed = false;

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: KeyNamespace,
    private readonly tasks: TaskStore,
    /** The signing secrets of a tenant: every current one signs, so a secret can be rotated. */
    private readonly secretsOf: (tenant: string) => string[],
    private readonly settings: CallbackSettings,
    private readonly consumer: string,
    private readonly logger: Logger,
    /** Told of each attempt's outcome: for metrics. */
    private readonly onOutcome: (outcome: 'delivered' | 'retried' | 'failed') => void = () => undefined,
  ) {
    this.queue = new Queue(QUEUE, { connection: redis, prefix: keys.prefix });
    this.queue.on('error', (err) => logger.warn('callback queue error', { error: err.message }));
  }

  start(): void {
    const connection = duplicateConnection(this.redis, { maxRetriesPerRequest: null });
    connection.on('error', (err: Error) => this.logger.debug('callback worker connection error', { error: err.message }));
    this.worker = new Worker(QUEUE, (job: Job<{ taskId: string }>) => this.deliver(job), {
      connection,
      prefix: this.keys.prefix,
      concurrency: 16,
      settings: { backoffStrategy: (attemptsMade: number) => this.backoff(attemptsMade) },
    });
    this.worker.on('failed', (job, err) => void this.gaveUp(job, err));
    this.worker.on('error', (err) => this.logger.warn('callback worker error', { error: err.message }));
    this.reader = duplicateConnection(this.redis, { maxRetriesPerRequest: null });
    this.reader.on('error', (err: Error) => this.logger.debug('callback reader connection error', { error: err.message }));
    this.loop = this.readEndings().catch((err: unknown) => {
      this.logger.error('callback reader stopped', { error: (err as Error).message });
    });
  }

  /** Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.reader?.disconnect();
    await this.loop;
    await this.worker?.close();
    await this.queue.close();
  }

  /** Reads the ended stream as one consumer of the group; queues a delivery for each ended task that asked for one. */
  private async readEndings(): Promise<void> {
    const reader = this.reader!;
    const stream = this.keys.ended();
    await reader.xgroup('CREATE', stream, GROUP, '0', 'MKSTREAM').catch((err: Error) => {
      if (!/BUSYGROUP/.test(err.message)) throw err; // another gateway made it first
    });
    let lastClaim = 0;
    while (!this.closed) {
      try {
        let entries: [string, string[]][] = [];
        if (Date.now() - lastClaim > CLAIM_IDLE_MS / 2) {
          lastClaim = Date.now();
          const [, claimed] = (await reader.xautoclaim(stream, GROUP, this.consumer, CLAIM_IDLE_MS, '0', 'COUNT', 100)) as [string, [string, string[]][]];
          entries = claimed.filter((e) => e && e[1]);
        }
        if (entries.length === 0) {
          const reply = (await reader.xreadgroup('GROUP', GROUP, this.consumer, 'COUNT', 100, 'BLOCK', 5_000, 'STREAMS', stream, '>')) as [string, [string, string[]][]][] | null;
          entries = reply?.[0]?.[1] ?? [];
        }
        for (const [id, fields] of entries) {
          const taskId = fields[fields.indexOf('task_id') + 1]!;
          const task = await this.tasks.get(taskId);
          if (task?.callbackUrl) {
            await this.queue.add('deliver', { taskId }, { jobId: `${taskId}-callback`, attempts: 10_000, backoff: { type: 'custom' }, removeOnComplete: { age: 86_400 }, removeOnFail: { age: 7 * 86_400 } });
          }
          await reader.xack(stream, GROUP, id);
        }
      } catch (err) {
        if (this.closed) return;
        this.logger.warn('callback reader failed; retrying', { error: (err as Error).message });
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
    }
  }

  private async deliver(job: Job<{ taskId: string }>): Promise<void> {
    const task = await this.tasks.get(job.data.taskId);
    if (!task?.callbackUrl) return; // expired meanwhile: nothing to tell
    const endedAt = Date.parse(task.finishedAt ?? task.createdAt);
    if (Date.now() - endedAt > this.settings.retryWindowSeconds * 1000) {
      throw new UnrecoverableError(`no 2xx within CALLBACK_RETRY_WINDOW_S=${this.settings.retryWindowSeconds}`);
    }
    const target = await checkCallbackUrl(task.callbackUrl, this.settings.allowedHosts).catch((err: Error) => {
      throw new UnrecoverableError(err.message);
    });
    const body = JSON.stringify(taskView(task));
    const id = `msg_${task.id}_ended`;
    const timestamp = Math.floor(Date.now() / 1000);
    const signatures = this.secretsOf(task.tenant).map((secret) => signWebhook(secret, id, timestamp, body));
    const started = performance.now();
    let attempt: CallbackAttempt;
    try {
      const headers = { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signatures.join(' '), 'user-agent': 'visionq-callbacks' };
      const status = await postWebhook(target, headers, body, this.settings.timeoutMs);
      attempt = { at: new Date().toISOString(), status, latency_ms: Math.round(performance.now() - started) };
    } catch (err) {
      attempt = { at: new Date().toISOString(), latency_ms: Math.round(performance.now() - started), error: (err as Error).message };
    }
    const delivered = attempt.status !== undefined && attempt.status >= 200 && attempt.status < 300;
    await this.tasks.recordCallback(task.id, attempt, delivered ? 'delivered' : 'pending', ATTEMPTS_SHOWN);
    this.onOutcome(delivered ? 'delivered' : 'retried');
    if (!delivered) throw new Error(attempt.error ?? `the receiver answered ${attempt.status}`);
    this.logger.info('callback delivered', { task_id: task.id, attempts: job.attemptsMade + 1 });
  }

  /** Out of attempts or window: recorded on the task, never silent. */
  private async gaveUp(job: Job<{ taskId: string }> | undefined, err: Error): Promise<void> {
    if (!job || (await job.getState()) !== 'failed') return;
    this.logger.error('callback failed for good', { task_id: job.data.taskId, attempts: job.attemptsMade, error: err.message });
    this.onOutcome('failed');
    await this.tasks.recordCallback(job.data.taskId, { at: new Date().toISOString(), latency_ms: 0, error: `given up: ${err.message}` }, 'failed', ATTEMPTS_SHOWN).catch((failure: Error) =>
      this.logger.error('could not record a failed callback', { task_id: job.data.taskId, error: failure.message }),
    );
  }

  /** Exponential from CALLBACK_BACKOFF_MS, capped at an hour, with full jitter over its upper half. */
  private backoff(attemptsMade: number): number {
    const ceiling = Math.min(this.settings.backoffMs * 2 ** Math.max(0, attemptsMade - 1), 3_600_000);
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  }
}
