import type { TaskFailure, TaskStatus } from '@visionq/api';

/** `batch`: a `POST /batch_predict`; `predict`: a `POST /predict` (one image, a client waiting). */
export type TaskKind = 'batch' | 'predict';

/** What a submit decides; fixed for the task's life. */
export interface TaskSpec {
  id: string;
  /** The tenant that submitted it: to any other (but an admin) the task does not exist. */
  tenant: string;
  kind: TaskKind;
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
  /** Where the task view is POSTed, signed, when the task ends. */
  callbackUrl?: string;
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
}
