import { UnavailableError } from '@visionq/errors';
import type { ImageResult } from '@visionq/inference';
import type { ChunkJobData } from './queue-names';
import type { TaskRecord, TaskSpec } from './task-record';
import type { TaskQueue } from './task.queue';
import type { TaskStore } from './task.store';

/** What a task reads: a list of image URIs, or a prefix listed by the workers. */
export type TaskInput = { images: string[] } | { source: string };

/**
 * Creates tasks: the record first, then its jobs. A task whose jobs cannot be enqueued
 * is marked failed at once, so no record waits forever for work that does not exist.
 */
export class TaskSubmitter {
  constructor(
    private readonly tasks: TaskStore,
    private readonly queue: TaskQueue,
    private readonly chunkSize: number,
  ) {}

  async submit(spec: TaskSpec, input: TaskInput): Promise<TaskRecord> {
    if ('source' in input) {
      const record = await this.tasks.create(spec, null);
      await this.enqueue(spec, () => this.queue.addList({ ...jobParams(spec), taskId: spec.id, source: input.source, page: 0, cursor: null, firstChunk: 0, priority: spec.priority }));
      return record;
    }
    const chunks = splitIntoChunks({ ...jobParams(spec), taskId: spec.id }, input.images, this.chunkSize);
    const record = await this.tasks.create(spec, { images: input.images.length, chunks: chunks.length });
    await this.enqueue(spec, () => this.queue.addChunks(chunks, spec.priority));
    return record;
  }

  /** A one-image task on the predict queue; `wait` resolves with its result line or throws PredictTimeoutError. */
  async predict(spec: TaskSpec, image: string): Promise<{ record: TaskRecord; wait(timeoutMs: number): Promise<ImageResult> }> {
    const record = await this.tasks.create(spec, { images: 1, chunks: 1 });
    const { wait } = await this.enqueue(spec, () => this.queue.addPredict({ ...jobParams(spec), taskId: spec.id, chunk: 0, images: [image] }));
    return { record, wait };
  }

  private async enqueue<T>(spec: TaskSpec, add: () => Promise<T>): Promise<T> {
    try {
      return await add();
    } catch (err) {
      await this.tasks.fail(spec.id, { code: 'unavailable', message: 'the task could not be queued' }).catch(() => undefined);
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
    chunks.push({ ...jobParams(task), taskId: task.taskId, chunk: firstChunk + chunks.length, images: images.slice(i, i + chunkSize) });
  }
  return chunks;
}

function jobParams(spec: Pick<TaskSpec, 'model' | 'topK' | 'output'>): Pick<ChunkJobData, 'model' | 'topK' | 'output'> {
  return { model: spec.model, topK: spec.topK, output: spec.output };
}
