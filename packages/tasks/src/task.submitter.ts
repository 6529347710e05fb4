import { ErrorCode, UnavailableError, VisionqError, type ImageResult, type TaskStatus } from '@visionq/api';
import type { IdempotencyStore } from './idempotency.store';
import type { ChunkJobData, JobParams } from './queue.jobs';
import type { TaskRecord, TaskSpec } from './task.record';
import type { TaskQueue } from './task.queue';
import type { TaskStore } from './task.store';

/** What a task reads: a list of image URIs, or a prefix listed by the workers. */
export type TaskInput = { images: string[] } | { source: string };

/** A client's `Idempotency-Key` (its tenant's own: keys of different tenants never meet), and the digest of the request it came with. */
export interface IdempotentRequest {
  key: string;
  digest: string;
}

export interface SubmitOptions {
  idempotent?: IdempotentRequest;
  /** The most images its tenant may have in unfinished tasks (`images_in_flight`); absent: no limit. */
  maxInFlight?: number;
}

export interface Submitted {
  taskId: string;
  status: TaskStatus;
  /** The key was seen before with the same request: this is the task made then, nothing new. */
  replayed: boolean;
}

/**
 * Creates tasks: the record first, then its jobs. A task whose jobs cannot be enqueued
 * is marked failed at once, so no record waits forever for work that does not exist.
 */
export class TaskSubmitter {
  constructor(
    private readonly tasks: TaskStore,
    private readonly queue: TaskQueue,
    private readonly idempotency: IdempotencyStore,
    private readonly chunkSize: number,
  ) {}

  /**
   * Submits a batch task. Under an idempotency key seen before with the same request the
   * answer is that task (`replayed`); with a different request it is 409 `conflict`.
   */
  async submit(spec: TaskSpec, input: TaskInput, options: SubmitOptions = {}): Promise<Submitted> {
    const { idempotent } = options;
    if (idempotent) {
      const claim = await this.idempotency.claim(tenantKey(spec, idempotent), idempotent.digest, spec.id);
      if (claim.outcome === 'conflict') {
        throw new VisionqError(ErrorCode.Conflict, `Idempotency-Key was used for a different request (task ${claim.taskId})`, [
          { field: 'Idempotency-Key', message: 'reused with a different body' },
        ]);
      }
      if (claim.outcome === 'replay') return { taskId: claim.taskId, status: (await this.tasks.status(claim.taskId)) ?? 'queued', replayed: true };
    }
    try {
      const record = await this.create(spec, input, options.maxInFlight);
      return { taskId: record.id, status: record.status, replayed: false };
    } catch (err) {
      // Free the key, so that the client's retry can succeed. Should Redis refuse that too,
      // the key expires with its retention; the client must hear the submit's own failure.
      if (idempotent) await this.idempotency.release(tenantKey(spec, idempotent), spec.id).catch(() => undefined);
      throw err;
    }
  }

  /** A one-image task on the predict queue; `wait` resolves with its result line or throws PredictTimeoutError. */
  async predict(spec: TaskSpec, image: string, options: Pick<SubmitOptions, 'maxInFlight'> = {}): Promise<{ record: TaskRecord; wait(timeoutMs: number): Promise<ImageResult> }> {
    const record = await this.tasks.create(spec, { images: 1, chunks: 1 }, options.maxInFlight);
    const { wait } = await this.enqueue(spec, () => this.queue.addPredict({ ...jobParams(spec), taskId: spec.id, index: 0, images: [image] }));
    return { record, wait };
  }

  /**
   * Runs an ended task's failed chunks (and its failed listing) again, as its next retry
   * round, and with `failedImages` every image whose result is an error; chunks already
   * counted are never counted again, so each image still counts once. Answers the round. A
   * task with nothing to run again is 409 `conflict`, saying why; jobs that could not be
   * queued are 503, and the same call, repeated, queues them (the retry stays under way).
   */
  async retry(task: TaskRecord, options: { failedImages: boolean }): Promise<number> {
    const deadline = task.deadline === undefined ? 0 : Date.parse(task.deadline);
    if (deadline > 0 && deadline <= Date.now()) throw conflict(task.id, `its deadline (${task.deadline}) has passed`);
    const retry = await this.tasks.retry(task.id, deadline, options.failedImages);
    switch (retry.outcome) {
      case 'missing':
        throw new VisionqError(ErrorCode.NotFound, `no task ${task.id}`, [{ field: 'id', message: 'unknown or expired task' }]);
      case 'running':
        throw conflict(task.id, 'it is still running');
      case 'nothing':
        throw conflict(task.id, `it ended ${retry.status} with no chunk that used up its attempts${options.failedImages ? ' and no failed image' : ' (failed_images: true also runs failed images again)'}`);
      case 'unaccounted':
        throw conflict(task.id, `it ended ${retry.status} before every chunk had run, so no job was kept to run again`);
    }
    const { round } = retry;
    const chunks = retry.entries.map((e): ChunkJobData =>
      'data' in e ? { ...e.data, round } : { ...jobParams(task), taskId: task.id, index: e.index, images: [], round, rerunFailed: true },
    );
    try {
      await this.queue.addChunks(chunks, task.priority);
      if (retry.listing) await this.queue.addList({ ...retry.listing, round });
    } catch (err) {
      throw new UnavailableError(`retry ${round} of task ${task.id} could not be queued (${(err as Error).message}); repeat the request to queue it`, { cause: err });
    }
    return round;
  }

  private async create(spec: TaskSpec, input: TaskInput, maxInFlight?: number): Promise<TaskRecord> {
    if ('source' in input) {
      const record = await this.tasks.create(spec, null, maxInFlight);
      await this.enqueue(spec, () => this.queue.addList({ ...jobParams(spec), taskId: spec.id, source: input.source, page: 0, cursor: null, firstChunk: 0, priority: spec.priority }));
      return record;
    }
    const chunks = splitIntoChunks({ ...jobParams(spec), taskId: spec.id }, input.images, this.chunkSize);
    const record = await this.tasks.create(spec, { images: input.images.length, chunks: chunks.length }, maxInFlight);
    await this.enqueue(spec, () => this.queue.addChunks(chunks, spec.priority));
    return record;
  }

  private async enqueue<T>(spec: TaskSpec, add: () => Promise<T>): Promise<T> {
    try {
      return await add();
    } catch (err) {
      // Redis refused the jobs, so it most likely refuses this too: then the record, never
      // started, expires by itself. The client must hear the enqueue's failure either way.
      await this.tasks.fail(spec.id, { code: ErrorCode.Unavailable, message: 'the task could not be queued' }).catch(() => false);
      throw new UnavailableError(`task ${spec.id} could not be queued: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** Chunk jobs for `images`, numbered from `firstChunk`, of the task's retry `round` when it has one. */
export function splitIntoChunks(
  task: Pick<ChunkJobData, 'taskId' | 'round'> & JobParams,
  images: string[],
  chunkSize: number,
  firstChunk = 0,
): ChunkJobData[] {
  const chunks: ChunkJobData[] = [];
  const round = task.round ? { round: task.round } : {};
  for (let i = 0; i < images.length; i += chunkSize) {
    chunks.push({ ...jobParams(task), taskId: task.taskId, index: firstChunk + chunks.length, images: images.slice(i, i + chunkSize), ...round });
  }
  return chunks;
}

function conflict(taskId: string, why: string): VisionqError {
  return new VisionqError(ErrorCode.Conflict, `task ${taskId} cannot be retried: ${why}`, [{ field: 'id', message: why }]);
}

function tenantKey(spec: TaskSpec, idempotent: IdempotentRequest): string {
  return `${spec.tenant}\n${idempotent.key}`;
}

function jobParams(from: JobParams): JobParams {
  return { model: from.model, topK: from.topK, output: from.output, ...(from.tenant === undefined ? {} : { tenant: from.tenant }), ...(from.requestId === undefined ? {} : { requestId: from.requestId }) };
}
