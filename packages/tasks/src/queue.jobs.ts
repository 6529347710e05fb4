import { UnrecoverableError, type JobsOptions } from 'bullmq';
import { ErrorCode, VisionqError } from '@visionq/api';

/**
 * Queues, per model version (`NAME@VERSION`), so a worker takes only work for versions it has loaded:
 * - `chunks-<ref>`: batch work, jobs `chunk` (images to classify) and `list` (one page of a `source` prefix);
 * - `predict-<ref>`: `POST /predict`, a client waiting; workers take these first.
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

/** What every job of a task carries from it: how to classify, where to write, and whose it is (for its log lines). */
export interface JobParams {
  /** `NAME@VERSION`. */
  model: string;
  topK: number;
  output: string;
  /** Absent on jobs queued before jobs named their tenant. */
  tenant?: string;
  /** The `X-Request-Id` of the task's submit. */
  requestId?: string;
}

/** A slice of a task's images. Jobs carry URIs, never image bytes. */
export interface ChunkJobData extends JobParams {
  taskId: string;
  /** The chunk's 0-based index in its task: its part file and its exactly-once bookkeeping are keyed by it. */
  index: number;
  images: string[];
  /** The retry round that queued it (absent: the submit's). */
  round?: number;
  /**
   * A committed chunk whose failed images a retry runs again: `images` is empty, the
   * images are those of its part's error lines, and the part is rewritten for `round`.
   */
  rerunFailed?: boolean;
}

/** One page of a `source` prefix: listing it enqueues its chunks and the next page. */
export interface ListJobData extends JobParams {
  taskId: string;
  source: string;
  page: number;
  /** The store's cursor for this page; null for the first. */
  cursor: string | null;
  /** Index of the first chunk this page makes. */
  firstChunk: number;
  priority: number;
  /** The retry round that queued it (absent: the submit's); the chunks and pages it queues belong to it too. */
  round?: number;
}

/**
 * Deterministic ids: a re-run that enqueues the same chunk again adds nothing while the
 * first is kept. Each retry round has ids of its own, as the failed jobs of the round
 * before are kept by BullMQ for a while under theirs.
 */
export function chunkJobId(taskId: string, index: number, round = 0): string {
  return `${taskId}-c${index}${roundSuffix(round)}`;
}

export function listJobId(taskId: string, page: number, round = 0): string {
  return `${taskId}-l${page}${roundSuffix(round)}`;
}

/** The fields a job's log lines carry, as a log stack indexes them. */
export function jobLogFields(job: { taskId: string; tenant?: string; requestId?: string }): Record<string, string> {
  return { task_id: job.taskId, ...(job.tenant === undefined ? {} : { tenant: job.tenant }), ...(job.requestId === undefined ? {} : { request_id: job.requestId }) };
}

function roundSuffix(round: number): string {
  return round > 0 ? `-r${round}` : '';
}

/** Retries (with exponential backoff from 1 s) apply to store and Redis faults only: bad images are results, never retries. */
export function jobOptions(attempts: number): JobsOptions {
  return {
    attempts,
    backoff: { type: 'exponential', delay: 1_000 },
    removeOnComplete: { age: 3_600, count: 10_000 },
    removeOnFail: { age: 7 * 24 * 3_600 },
  };
}

/** Codes another attempt may cure: an outage, a slow dependency, a failed run, a bug that may be load-dependent. */
const RETRYABLE: readonly ErrorCode[] = [ErrorCode.Unavailable, ErrorCode.Timeout, ErrorCode.InferenceFailed, ErrorCode.Internal];

/**
 * Whether a job that threw `err` should run again. Anything visionq did not raise on
 * purpose is retried; a VisionqError whose code no retry can cure (a source the store
 * cannot address, a model gone from this worker) is not.
 */
export function isRetryable(err: unknown): boolean {
  return !(err instanceof VisionqError) || RETRYABLE.includes(err.code);
}

/** Tells BullMQ not to retry, keeping the error's code for the task's failure. */
export class PermanentJobError extends UnrecoverableError {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}
