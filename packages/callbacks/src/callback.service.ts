import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Config } from '@visionq/config';
import type { Logger } from '@visionq/observability';
import { isTerminal } from '@visionq/api';
import { duplicateConnection, taskView, type KeyNamespace, type RedisConnection, type TaskRecord, type TaskStore } from '@visionq/tasks';
import { checkCallbackUrl } from './callback-url';
import { signWebhook } from './webhook-signature';
import { postWebhook } from './webhook-post';

const QUEUE = 'callbacks';
const GROUP = 'callbacks';
/** Entries of the ended stream a crashed gateway held this long are taken over by another. */
const CLAIM_IDLE_MS = 60_000;
/** Attempts kept in the task view (the newest). */
const ATTEMPTS_SHOWN = 20;

export type CallbackSettings = Pick<Config['callbacks'], 'allowedHosts' | 'retryWindowSeconds' | 'timeoutMs' | 'backoffMs' | 'progressIntervalSeconds'>;

/** A delivery job: the task's ending of a retry round (0: its first), or its progress now. */
interface DeliveryJob {
  taskId: string;
  round?: number;
}

enum JobName {
  Ended = 'deliver',
  Progress = 'progress',
}

/** One try at delivering a task's callback, as `GET /tasks/:id` shows it. */
export interface CallbackAttempt {
  at: string;
  /** The receiver's HTTP status; absent when no answer came. */
  status?: number;
  latency_ms: number;
  error?: string;
}

/**
 * Delivers each task's callback once its task has ended, exactly once per ending whatever
 * the number of gateways: every gateway reads the one stream of ended tasks as a member of
 * one consumer group (an entry goes to one of them, and is taken over if that one dies), and
 * turns an ended task that asked for a callback into a BullMQ job whose id is the task's
 * (and its retry round's), so it is queued once. Delivery is that job: POST the task view,
 * signed as Standard Webhooks says, retried with exponential backoff and jitter until the
 * receiver answers 2xx or the retry window is over; every attempt is recorded on the task.
 *
 * Progress callbacks (`events: ["progress"]`) come the same way from the progress stream:
 * one pending job per task, delayed to at most one every CALLBACK_PROGRESS_INTERVAL_S,
 * that POSTs the view as it is when it runs. They are not retried: the next one, or the
 * ending, says more.
 */
export class CallbackService {
  /** The delivery jobs, for a queue UI to show. */
  readonly queue: Queue;
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
    private readonly onOutcome: (outcome: 'delivered' | 'retried' | 'failed' | 'progress_sent' | 'progress_dropped') => void = () => undefined,
  ) {
    this.queue = new Queue(QUEUE, { connection: redis, prefix: keys.prefix });
    this.queue.on('error', (err) => logger.warn('callback queue error', { error: err.message }));
  }

  start(): void {
    const connection = duplicateConnection(this.redis, { maxRetriesPerRequest: null });
    connection.on('error', (err: Error) => this.logger.debug('callback worker connection error', { error: err.message }));
    this.worker = new Worker(QUEUE, (job: Job<DeliveryJob>) => (job.name === JobName.Progress ? this.deliverProgress(job) : this.deliver(job)), {
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

  /** Reads the ended and progress streams as one consumer of the group; queues a delivery for each task that asked for one. */
  private async readEndings(): Promise<void> {
    const reader = this.reader!;
    const streams = [this.keys.ended(), this.keys.progress()];
    const makeGroups = async () => {
      for (const stream of streams) {
        await reader.xgroup('CREATE', stream, GROUP, '0', 'MKSTREAM').catch((err: Error) => {
          if (!/BUSYGROUP/.test(err.message)) throw err; // another gateway made it first
        });
      }
    };
    await makeGroups();
    let lastClaim = 0;
    while (!this.closed) {
      try {
        let batches: Array<[stream: string, entries: [string, string[]][]]> = [];
        if (Date.now() - lastClaim > CLAIM_IDLE_MS / 2) {
          lastClaim = Date.now();
          for (const stream of streams) {
            const [, claimed] = (await reader.xautoclaim(stream, GROUP, this.consumer, CLAIM_IDLE_MS, '0', 'COUNT', 100)) as [string, [string, string[]][]];
            batches.push([stream, claimed.filter((e) => e && e[1])]);
          }
        }
        if (batches.every(([, entries]) => entries.length === 0)) {
          const reply = (await reader.xreadgroup('GROUP', GROUP, this.consumer, 'COUNT', 100, 'BLOCK', 5_000, 'STREAMS', ...streams, '>', '>')) as [string, [string, string[]][]][] | null;
          batches = reply ?? [];
        }
        for (const [stream, entries] of batches) {
          for (const [id, fields] of entries) {
            const field = (name: string) => fields[fields.indexOf(name) + 1];
            if (stream === this.keys.ended()) await this.queueEnded(field('task_id')!, Number(field('round') ?? 0));
            else await this.queueProgress(field('task_id')!);
            await reader.xack(stream, GROUP, id);
          }
        }
      } catch (err) {
        if (this.closed) return;
        this.logger.warn('callback reader failed; retrying', { error: (err as Error).message });
        // A Redis that lost its data (restarted without persistence) lost the groups too.
        if (/NOGROUP/.test((err as Error).message)) await makeGroups().catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
    }
  }

  private async queueEnded(taskId: string, round: number): Promise<void> {
    const task = await this.tasks.get(taskId);
    if (!task?.callbackUrl) return;
    await this.queue.add(JobName.Ended, { taskId, round } satisfies DeliveryJob, {
      jobId: `${taskId}-callback${round > 0 ? `-r${round}` : ''}`,
      attempts: 10_000,
      backoff: { type: 'custom' },
      removeOnComplete: { age: 86_400 },
      removeOnFail: { age: 7 * 86_400 },
    });
  }

  /** One pending progress delivery per task (a second add while one waits adds nothing), not before the interval since the last. */
  private async queueProgress(taskId: string): Promise<void> {
    const sentAt = await this.tasks.progressSentAt(taskId);
    const delay = Math.max(0, sentAt + this.settings.progressIntervalSeconds * 1000 - Date.now());
    await this.queue.add(JobName.Progress, { taskId } satisfies DeliveryJob, { jobId: `${taskId}-progress`, delay, attempts: 1, removeOnComplete: true, removeOnFail: true });
  }

  private async deliver(job: Job<DeliveryJob>): Promise<void> {
    const task = await this.tasks.get(job.data.taskId);
    if (!task?.callbackUrl) return; // expired meanwhile: nothing to tell
    const round = job.data.round ?? 0;
    if (task.retries !== round) {
      this.logger.info('callback of an ending a retry superseded: the next ending is told instead', { task_id: task.id, round });
      return;
    }
    const endedAt = Date.parse(task.finishedAt ?? task.createdAt);
    if (Date.now() - endedAt > this.settings.retryWindowSeconds * 1000) {
      throw new UnrecoverableError(`no 2xx within CALLBACK_RETRY_WINDOW_S=${this.settings.retryWindowSeconds}`);
    }
    const attempt = await this.post(task, `msg_${task.id}_ended${round > 0 ? `_r${round}` : ''}`).catch((err: Error) => {
      throw new UnrecoverableError(err.message);
    });
    const delivered = attempt.status !== undefined && attempt.status >= 200 && attempt.status < 300;
    await this.tasks.recordCallback(task.id, attempt, delivered ? 'delivered' : 'pending', ATTEMPTS_SHOWN);
    this.onOutcome(delivered ? 'delivered' : 'retried');
    if (!delivered) throw new Error(attempt.error ?? `the receiver answered ${attempt.status}`);
    this.logger.info('callback delivered', { task_id: task.id, tenant: task.tenant, attempts: job.attemptsMade + 1 });
  }

  /** The task view now, to a task still live; once, whatever the answer. */
  private async deliverProgress(job: Job<DeliveryJob>): Promise<void> {
    const task = await this.tasks.get(job.data.taskId);
    if (!task?.callbackUrl || isTerminal(task.status)) return; // its ending is told instead
    await this.tasks.markProgressSent(task.id, Date.now());
    const attempt = await this.post(task, `msg_${task.id}_progress_${Date.now()}`).catch((err: Error) => ({ error: err.message, status: undefined }));
    const sent = attempt.status !== undefined && attempt.status >= 200 && attempt.status < 300;
    this.onOutcome(sent ? 'progress_sent' : 'progress_dropped');
    if (!sent) this.logger.info('progress callback not taken; the next one or the ending follows', { task_id: task.id, tenant: task.tenant, status: attempt.status, error: attempt.error });
  }

  /** One signed POST of the task view. Rejects when the URL no longer passes its check (no retry cures that). */
  private async post(task: TaskRecord, id: string): Promise<CallbackAttempt> {
    const target = await checkCallbackUrl(task.callbackUrl!, this.settings.allowedHosts);
    const body = JSON.stringify(taskView(task));
    const timestamp = Math.floor(Date.now() / 1000);
    const signatures = this.secretsOf(task.tenant).map((secret) => signWebhook(secret, id, timestamp, body));
    const started = performance.now();
    try {
      const headers = { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signatures.join(' '), 'user-agent': 'visionq-callbacks' };
      const status = await postWebhook(target, headers, body, this.settings.timeoutMs);
      return { at: new Date().toISOString(), status, latency_ms: Math.round(performance.now() - started) };
    } catch (err) {
      return { at: new Date().toISOString(), latency_ms: Math.round(performance.now() - started), error: (err as Error).message };
    }
  }

  /** Out of attempts or window: recorded on the task, never silent. */
  private async gaveUp(job: Job<DeliveryJob> | undefined, err: Error): Promise<void> {
    if (!job || job.name === JobName.Progress || (await job.getState()) !== 'failed') return;
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
