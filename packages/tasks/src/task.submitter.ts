import { ErrorCode, UnavailableError, VisionqError, type ImageResult, type TaskStatus } from '@visionq/api';
import type { IdempotencyStore } from './idempotency.store';
import type { ChunkJobData } from './queue.jobs';
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

/** Chunk jobs for `images`, numbered from `firstChunk`. */
export function splitIntoChunks(
  task: Pick<ChunkJobData, 'taskId' | 'model' | 'topK' | 'output'>,
  images: string[],
  chunkSize: number,
  firstChunk = 0,
): ChunkJobData[] {
  const chunks: ChunkJobData[] = [];
  for (let i = 0; i < images.length; i += chunkSize) {
    chunks.push({ ...jobParams(task), taskId: task.taskId, index: firstChunk + chunks.length, images: images.slice(i, i + chunkSize) });
  }
  return chunks;
}

function tenantKey(spec: TaskSpec, idempotent: IdempotentRequest): string {
  return `${spec.tenant}\n${idempotent.key}`;
}

function jobParams(spec: Pick<TaskSpec, 'model' | 'topK' | 'output'>): Pick<ChunkJobData, 'model' | 'topK' | 'output'> {
  return { model: spec.model, topK: spec.topK, output: spec.output };
}
