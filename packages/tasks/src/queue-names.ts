import type { JobsOptions } from 'bullmq';

/**
 * Queues, per model, so a worker takes only work for models it serves:
 * - `chunks-<model>`: batch work, jobs `chunk` (images to classify) and `list` (one page of a `source` prefix);
 * - `predict-<model>`: `POST /predict`, a client waiting; workers take these first.
 */
export function chunkQueueName(model: string): string {
  return `chunks-${model}`;
}

export function predictQueueName(model: string): string {
  return `predict-${model}`;
}

export enum JobName {
  Chunk = 'chunk',
  List = 'list',
}

/** A slice of a task's images. Jobs carry URIs, never image bytes. */
export interface ChunkJobData {
  taskId: string;
  /** 0-based; the part file and the exactly-once bookkeeping are keyed by it. */
  chunk: number;
  images: string[];
  model: string;
  topK: number;
  output: string;
}

/** One page of a `source` prefix: listing it enqueues its chunks and the next page. */
export interface ListJobData {
  taskId: string;
  source: string;
  page: number;
  /** The store's cursor for this page; null for the first. */
  cursor: string | null;
  /** Index of the first chunk this page makes. */
  firstChunk: number;
  model: string;
  topK: number;
  output: string;
  priority: number;
}

/** Deterministic ids: a re-run that enqueues the same chunk again adds nothing while the first is kept. */
export function chunkJobId(taskId: string, chunk: number): string {
  return `${taskId}-c${chunk}`;
}

export function listJobId(taskId: string, page: number): string {
  return `${taskId}-l${page}`;
}

/** Retries apply to store and Redis faults only: bad images are results, never retries. */
export function defaultJobOptions(attempts: number): JobsOptions {
  return {
    attempts,
    backoff: { type: 'exponential', delay: 1_000 },
    removeOnComplete: { age: 3_600, count: 10_000 },
    removeOnFail: { age: 7 * 24 * 3_600 },
  };
}
