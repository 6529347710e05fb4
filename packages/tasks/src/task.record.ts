import type { CallbackEvent, FailedChunkView, TaskFailure, TaskStatus } from '@visionq/api';
import type { ChunkJobData, ListJobData } from './queue.jobs';

/** `batch`: a `POST /batch_predict`; `predict`: a `POST /predict` (one image, a client waiting). */
export type TaskKind = 'batch' | 'predict';

/** What a submit decides; fixed for the task's life. */
export interface TaskSpec {
  id: string;
  /** The tenant that submitted it: to any other (but an admin) the task does not exist. */
  tenant: string;
  kind: TaskKind;
  /** The model version, `NAME@VERSION`, resolved at submit: its queues, its backlog. */
  model: string;
  topK: number;
  /** Folder URI the result parts go under: `<output><id>/part-NNNNNN.jsonl`. */
  output: string;
  /** BullMQ priority of the task's chunks: 1 is the most urgent. */
  priority: number;
  /** The client's own JSON, returned as given. */
  metadata?: Record<string, unknown>;
  /** The prefix listed for a `source` task. */
  source?: string;
  /** Past this (ISO 8601) the task ends `failed` with `timeout`; what committed stays. */
  deadline?: string;
  /** The `X-Request-Id` of its submit: its jobs' log lines carry it. */
  requestId?: string;
  /** Where the task view is POSTed, signed, when the task ends. */
  callbackUrl?: string;
  /** What is POSTed there: `ended` always; `progress` too when asked, at most every CALLBACK_PROGRESS_INTERVAL_S. */
  callbackEvents?: CallbackEvent[];
}

/** The deliveries of a task's callback so far. */
export interface CallbackRecord {
  state: 'pending' | 'delivered' | 'failed';
  attempts: Array<{ at: string; status?: number; latency_ms: number; error?: string }>;
}

/** The task as stored in Redis. Counts are exact: each chunk is counted once, when it commits. */
export interface TaskRecord extends TaskSpec {
  status: TaskStatus;
  /** Images known so far: every image for a list task, those listed so far for a `source` task. */
  total: number;
  done: number;
  succeeded: number;
  failed: number;
  /** Chunks known so far (final once `listed`). */
  chunks: number;
  /** Every chunk of the task is known (a `source` prefix has been listed to its end). */
  listed: boolean;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** Why a task failed. */
  error?: TaskFailure;
  callback?: CallbackRecord;
  /** Retries so far (`POST /tasks/:id/retry`): the round the task's latest jobs belong to. */
  retries: number;
  /** Chunks that used up their attempts and that no retry has taken back yet (at most a hundred, by index). */
  failedChunks?: FailedChunkView[];
  /** The `source` page whose listing used up its attempts. */
  failedListing?: FailedListing;
}

/** Why a job used up its attempts. */
export interface JobFailure {
  attempts: number;
  error: TaskFailure;
  failed_at: string;
}

/** A chunk that used up its attempts, with its job, kept for a retry. */
export interface FailedChunk extends FailedChunkView {
  data: ChunkJobData;
}

/** A `source` page whose listing used up its attempts, with its job. */
export interface FailedListing extends JobFailure {
  page: number;
  data: ListJobData;
}
