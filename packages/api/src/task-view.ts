import { z } from 'zod';
import { errorCodeSchema } from './error-codes';
import { imageResultSchema, predictionSchema } from './result-line';
import { CALLBACK_EVENTS, taskStatusSchema } from './task.schema';

const isoTime = z.iso.datetime();

export const taskProgressSchema = z
  .object({
    total: z.number().int().min(0).describe("Images known so far (a `source` task's grows while it is listed)."),
    done: z.number().int().min(0),
    succeeded: z.number().int().min(0),
    failed: z.number().int().min(0).describe('Images with an error line.'),
  })
  .meta({ id: 'TaskProgress', description: 'Exact counts: each chunk is counted once, when it commits.' });
export type TaskProgress = z.infer<typeof taskProgressSchema>;

export const taskFailureSchema = z.object({ code: errorCodeSchema, message: z.string() }).meta({ id: 'TaskFailure', description: 'Why a task failed.' });
export type TaskFailure = z.infer<typeof taskFailureSchema>;

/** Which task events a callback receives. */
const callbackEventSchema = z.enum(CALLBACK_EVENTS);

export const callbackViewSchema = z
  .object({
    url: z.string(),
    state: z.enum(['pending', 'delivered', 'failed']).describe('`failed`: given up after CALLBACK_RETRY_WINDOW_S.'),
    events: z.array(callbackEventSchema).describe('What is POSTed: `ended` always; `progress` too when the submit asked (`events`), at most every CALLBACK_PROGRESS_INTERVAL_S.'),
    attempts: z
      .array(
        z.object({
          at: isoTime,
          status: z.number().int().optional().describe("The receiver's HTTP status; absent when it did not answer."),
          latency_ms: z.number().min(0),
          error: z.string().optional(),
        }),
      )
      .describe('Every delivery attempt so far, in order.'),
  })
  .meta({ id: 'CallbackView', description: "The task's callback: where, whether it was delivered, and every attempt (time, status, latency)." });
export type CallbackView = z.infer<typeof callbackViewSchema>;

const jobFailure = {
  attempts: z.number().int().min(0).describe('Attempts it had (CHUNK_ATTEMPTS, or fewer for an error no retry cures).'),
  error: taskFailureSchema,
  failed_at: isoTime,
};

export const failedChunkSchema = z
  .object({ index: z.number().int().min(0), images: z.number().int().min(0), ...jobFailure })
  .meta({ id: 'FailedChunk', description: 'A chunk that used up its attempts: its images are in no result until `POST /tasks/{id}/retry` runs it again.' });
export type FailedChunkView = z.infer<typeof failedChunkSchema>;

export const failedListingSchema = z
  .object({ page: z.number().int().min(0), ...jobFailure })
  .meta({ id: 'FailedListing', description: 'The `source` page whose listing used up its attempts: no image after it is known until `POST /tasks/{id}/retry`.' });
export type FailedListingView = z.infer<typeof failedListingSchema>;

export const taskViewSchema = z
  .object({
    task_id: z.uuid(),
    status: taskStatusSchema,
    model: z.string(),
    model_version: z.string().optional().describe('The version of `model` the task runs on, fixed when it was submitted.'),
    progress: taskProgressSchema,
    source: z.string().optional().describe("A `source` task's prefix."),
    listing_complete: z.boolean().optional().describe('Whether the `source` prefix has been listed to its end.'),
    created_at: isoTime,
    started_at: isoTime.nullable(),
    finished_at: isoTime.nullable(),
    deadline: isoTime.optional().describe('Past this the task ends `failed` with `timeout` (from `timeout_s`, or TASK_TIMEOUT_S).'),
    error: taskFailureSchema.optional(),
    failed_chunks: z.array(failedChunkSchema).optional().describe('Chunks that used up their attempts (at most a hundred, by index).'),
    failed_listing: failedListingSchema.optional(),
    retries: z.number().int().min(0).describe('Times the task was retried with `POST /tasks/{id}/retry`.'),
    callback: callbackViewSchema.optional(),
    metadata: z.record(z.string(), z.unknown()).optional().describe("The submit's `metadata`."),
    results: z.array(imageResultSchema).optional().describe('Inline for tasks of at most INLINE_RESULTS_LIMIT images, once they end.'),
    results_url: z.string(),
    output: z.string().describe("Folder holding the task's result parts."),
  })
  .meta({ id: 'TaskView', description: 'A task as `GET /tasks/{id}` shows it; also the data of every event and the body of every callback.' });
export type TaskView = z.infer<typeof taskViewSchema>;

export const taskAcceptedSchema = z
  .object({ task_id: z.uuid(), status: taskStatusSchema, status_url: z.string().describe('Where to poll the task.') })
  .meta({ id: 'TaskAccepted', description: '202 of `POST /batch_predict`.' });
export type TaskAccepted = z.infer<typeof taskAcceptedSchema>;

export const predictResponseSchema = z
  .object({
    task_id: z.uuid(),
    model: z.object({ name: z.string(), version: z.string() }).describe('The model and the version that ran.'),
    image: z.string().describe('The image URI (an upload is stored under UPLOADS_URI first).'),
    predictions: z.array(predictionSchema),
  })
  .meta({ id: 'PredictResponse', description: '200 of `POST /predict`.' });
export type PredictResponse = z.infer<typeof predictResponseSchema>;

export const taskListSchema = z
  .object({
    tasks: z.array(taskViewSchema).describe('Newest first, without inline results.'),
    next_cursor: z
      .string()
      .nullable()
      .describe('Pass as `cursor` for the next page; null when none is left. A page holds fewer than `limit` when a `status` filter matched few of the tasks one call looks at (a thousand).'),
  })
  .meta({ id: 'TaskList', description: "`GET /tasks`: the caller's tenant's tasks, newest first." });
export type TaskList = z.infer<typeof taskListSchema>;

export const resultsPageSchema = z
  .object({
    task_id: z.uuid(),
    status: taskStatusSchema,
    results: z.array(imageResultSchema),
    next_cursor: z.string().nullable().describe('Pass as `cursor` for the next page; null when every result has been read.'),
  })
  .meta({ id: 'ResultsPage', description: 'A page of `GET /tasks/{id}/results`.' });
export type ResultsPage = z.infer<typeof resultsPageSchema>;

export function statusUrl(taskId: string): string {
  return `/tasks/${taskId}`;
}

export function resultsUrl(taskId: string): string {
  return `/tasks/${taskId}/results`;
}
