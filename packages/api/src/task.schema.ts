import { z } from 'zod';
import { folderUriSchema } from './object-uri.schema';

export const taskStatusSchema = z
  .enum(['queued', 'running', 'succeeded', 'completed_with_errors', 'failed', 'cancelled'])
  .meta({ id: 'TaskStatus', description: '`queued` → `running` → `succeeded` | `completed_with_errors` (some images have error lines) | `failed` | `cancelled`.' });
export type TaskStatus = z.infer<typeof taskStatusSchema>;

export const TERMINAL_STATUSES: readonly TaskStatus[] = ['succeeded', 'completed_with_errors', 'failed', 'cancelled'];

export function isTerminal(status: TaskStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

/** A request's `priority`, and the BullMQ priority of its chunks: 1 is taken first. */
export const PRIORITIES = { high: 1, normal: 5, low: 10 } as const;
export type Priority = keyof typeof PRIORITIES;

/** Classes per image when a request names no `top_k`. */
export const DEFAULT_TOP_K = 5;

const MAX_METADATA_BYTES = 16 * 1024;

/** What a task's callback is told of: `ended` always; `progress` when asked, at most every CALLBACK_PROGRESS_INTERVAL_S. */
export const CALLBACK_EVENTS = ['progress', 'ended'] as const;
export type CallbackEvent = (typeof CALLBACK_EVENTS)[number];
const callbackEvents = z.array(z.enum(CALLBACK_EVENTS)).min(1).max(CALLBACK_EVENTS.length);

/** Most classes one image's answer may list. */
export const MAX_TOP_K = 1000;

/**
 * A whole number written as text (a form field, a query parameter): digits only, so that
 * "", " 5", "1e3" or "0x10" are refused rather than read as some number.
 */
const wholeNumberText = z.string().regex(/^[0-9]{1,9}$/, 'expected a whole number').transform(Number);

const topK = z.number().int().min(1).max(MAX_TOP_K);
/** A task's deadline, in seconds from its submit. */
const timeoutS = z.number().int().min(1).max(365 * 86_400);
const metadata = z
  .record(z.string(), z.unknown())
  .refine((m) => JSON.stringify(m).length <= MAX_METADATA_BYTES, `at most ${MAX_METADATA_BYTES} bytes of JSON`);

/** Options every submit may carry as JSON: each of its JSON type, never coerced. */
const options = {
  model: z.string().min(1).max(200).optional().describe('`NAME` (its default version) or `NAME@VERSION`; the default model when absent.'),
  top_k: topK.optional().describe(`Classes per image, most probable first (default ${DEFAULT_TOP_K}, at most the model's classes).`),
  output: folderUriSchema.optional().describe("Folder for the task's result parts (default: RESULTS_URI, per tenant)."),
  priority: z.enum(['high', 'normal', 'low']).optional().describe('Order among waiting tasks (default `normal`).'),
  callback_url: z.string().optional().describe('Receives the task view, signed as Standard Webhooks, once the task ends: https to a public address, or a host of CALLBACK_ALLOWED_HOSTS.'),
  events: callbackEvents.optional().describe('What the callback is POSTed: `ended` always; with `progress`, also the task view while it runs, at most every CALLBACK_PROGRESS_INTERVAL_S. Needs `callback_url`.'),
  metadata: metadata.optional().describe('Any JSON object (at most 16 KiB), returned with the task.'),
  timeout_s: timeoutS.optional().describe('Deadline in seconds from the submit (default TASK_TIMEOUT_S): past it the task ends `failed` with `timeout`, its results so far kept.'),
};

/** The same options as multipart form fields, where every value is text. */
const formOptions = {
  ...options,
  top_k: wholeNumberText.pipe(topK).optional(),
  timeout_s: wholeNumberText.pipe(timeoutS).optional(),
  /** A comma list: `progress,ended`. */
  events: z
    .string()
    .transform((text) => text.split(','))
    .pipe(callbackEvents)
    .optional(),
  metadata: z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'not valid JSON' });
        return z.NEVER;
      }
    })
    .pipe(metadata)
    .optional(),
};

export type SubmitOptions = z.infer<z.ZodObject<typeof options>>;

/** `POST /batch_predict` as JSON: exactly one of `images` and `source`. */
export const batchJsonSchema = z
  .strictObject({
    images: z.array(z.string().min(1)).min(1, 'list at least one image').optional().describe('Object URIs (`s3://bucket/key`), at most MAX_TASK_IMAGES.'),
    source: z.string().min(1).optional().describe('A prefix (`s3://bucket/prefix/`) whose objects the workers list page by page; no limit on their number.'),
    ...options,
  })
  .refine((b) => (b.images === undefined) !== (b.source === undefined), { message: 'give exactly one of `images` and `source`', path: ['images'] });
export type BatchRequest = z.infer<typeof batchJsonSchema>;

/** Form fields of a multipart `POST /batch_predict`: the same options, `metadata` as a JSON string. */
export const batchFormSchema = z.strictObject(formOptions);

/** `POST /predict` as JSON. */
export const predictJsonSchema = z.strictObject({
  image: z.string().min(1).describe('Object URI (`s3://bucket/key`).'),
  model: options.model,
  top_k: options.top_k,
});
export type PredictRequest = z.infer<typeof predictJsonSchema>;

/** Form fields of a multipart `POST /predict`. */
export const predictFormSchema = z.strictObject({ model: formOptions.model, top_k: formOptions.top_k });

/** `POST /tasks/:id/retry`: the failed chunks always; `failed_images` also runs again every image whose result is an error. */
export const retryJsonSchema = z
  .strictObject({
    failed_images: z.boolean().optional().describe('Also run again every image whose result line is an error (an object uploaded since, a store that refused it).'),
  })
  .meta({ id: 'RetryRequest', description: 'The body of `POST /tasks/{id}/retry` (optional): the failed chunks always run again.' });
export type RetryRequest = z.infer<typeof retryJsonSchema>;

/** The query of `GET /tasks`. */
export const taskListQuerySchema = z.object({
  status: taskStatusSchema.optional().describe('Only tasks with this status.'),
  limit: wholeNumberText.pipe(z.number().int().min(1).max(100)).default(20).describe('Tasks per page, 1–100.'),
  cursor: z.string().min(1).optional().describe("The previous page's `next_cursor`."),
});

/** The query of `GET /tasks/:id/results`. */
export const resultsQuerySchema = z.object({
  cursor: z.string().min(1).optional().describe("The previous page's `next_cursor`."),
  limit: wholeNumberText.pipe(z.number().int().min(1).max(1000)).default(100).describe('Result lines per page, 1–1000.'),
  format: z.enum(['json', 'ndjson']).optional().describe('`ndjson`: every line as one stream (as `Accept: application/x-ndjson`).'),
});
