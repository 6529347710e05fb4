import type { ErrorCode } from './error-codes';
import type { ImageResult, Prediction } from './result-line';
import type { CallbackEvent, TaskStatus } from './task.schema';

/** Exact counts: each chunk is counted once, when it commits. */
export interface TaskProgress {
  /** Images known so far (a `source` task's grows while it is listed). */
  total: number;
  done: number;
  succeeded: number;
  failed: number;
}

/** Why a task failed. */
export interface TaskFailure {
  code: ErrorCode;
  message: string;
}

/** `GET /tasks/:id`. */
export interface TaskView {
  task_id: string;
  status: TaskStatus;
  model: string;
  progress: TaskProgress;
  /** A `source` task's prefix, and whether it has been listed to its end. */
  source?: string;
  listing_complete?: boolean;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  /** Past this the task ends `failed` with `timeout` (from `timeout_s`, or TASK_TIMEOUT_S). */
  deadline?: string;
  error?: TaskFailure;
  /** Chunks that used up their attempts (at most a hundred, by index): their images are in no result until `POST /tasks/:id/retry` runs them again. */
  failed_chunks?: FailedChunkView[];
  /** The `source` page whose listing used up its attempts: no image after it is known until a retry. */
  failed_listing?: FailedListingView;
  /** Retries so far (`POST /tasks/:id/retry`). */
  retries: number;
  /** The task's callback: where, whether it was delivered, and every attempt (time, status, latency). */
  callback?: CallbackView;
  metadata?: Record<string, unknown>;
  /** Inline for small tasks once they end. */
  results?: ImageResult[];
  results_url: string;
  /** Folder holding the task's result parts. */
  output: string;
}

/** Why a job used up its attempts. */
export interface JobFailureView {
  attempts: number;
  error: TaskFailure;
  failed_at: string;
}

export interface FailedChunkView extends JobFailureView {
  index: number;
  images: number;
}

export interface FailedListingView extends JobFailureView {
  page: number;
}

export interface CallbackView {
  url: string;
  /** What is POSTed: `ended`, and `progress` when asked. */
  events: CallbackEvent[];
  state: 'pending' | 'delivered' | 'failed';
  attempts: Array<{ at: string; status?: number; latency_ms: number; error?: string }>;
}

/** 202 of `POST /batch_predict`. */
export interface TaskAccepted {
  task_id: string;
  status: TaskStatus;
  status_url: string;
}

/** 200 of `POST /predict`. */
export interface PredictResponse {
  task_id: string;
  model: { name: string; version: string };
  image: string;
  predictions: Prediction[];
}

/** A page of `GET /tasks/:id/results`. */
export interface ResultsPage {
  task_id: string;
  status: TaskStatus;
  results: ImageResult[];
  /** Pass as `cursor` for the next page; null when every result has been read. */
  next_cursor: string | null;
}

export function statusUrl(taskId: string): string {
  return `/tasks/${taskId}`;
}

export function resultsUrl(taskId: string): string {
  return `/tasks/${taskId}/results`;
}
