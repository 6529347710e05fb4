import { z } from 'zod';
import { ErrorCode, VisionqError, type ErrorDetail } from '@visionq/errors';

/** BullMQ priorities of a task's chunks: 1 is taken first. */
export const PRIORITIES = { high: 1, normal: 5, low: 10 } as const;

const MAX_METADATA_BYTES = 16 * 1024;

/** Options every submit may carry, in JSON or as multipart form fields. */
const options = {
  model: z.string().min(1).optional(),
  top_k: z.coerce.number().int().min(1).optional(),
  output: z.string().regex(/^s3:\/\/[^/]+\/(.+\/)?$/, 'expected s3://bucket/prefix/ (ending in /)').optional(),
  priority: z.enum(['high', 'normal', 'low']).optional(),
  callback_url: z.string().optional(),
  metadata: z
    .record(z.string(), z.unknown())
    .refine((m) => JSON.stringify(m).length <= MAX_METADATA_BYTES, `at most ${MAX_METADATA_BYTES} bytes of JSON`)
    .optional(),
};

export type SubmitOptions = z.infer<z.ZodObject<typeof options>>;

export const batchJsonSchema = z
  .strictObject({
    images: z.array(z.string().min(1)).min(1, 'list at least one image').optional(),
    source: z.string().min(1).optional(),
    ...options,
  })
  .refine((b) => (b.images === undefined) !== (b.source === undefined), { message: 'give exactly one of `images` and `source`', path: ['images'] });

export const predictJsonSchema = z.strictObject({
  image: z.string().min(1),
  model: options.model,
  top_k: options.top_k,
});

/** Form fields of a multipart `POST /predict`. */
export const predictFormSchema = z.strictObject({ model: options.model, top_k: options.top_k });

/** Form fields of a multipart submit: the same options, `metadata` as a JSON string. */
export const formFieldsSchema = z.strictObject({
  ...options,
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
    .pipe(options.metadata)
    .optional(),
});

/** Parses with `schema`; every problem becomes one detail of a 400 `invalid_request`. */
export function parseRequest<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new VisionqError(ErrorCode.InvalidRequest, 'the body must be a JSON object');
  }
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const details: ErrorDetail[] = parsed.error.issues.map((i) => ({ field: i.path.join('.') || undefined, message: i.message }));
  throw new VisionqError(ErrorCode.InvalidRequest, `invalid request: ${details.map((d) => (d.field ? `${d.field}: ${d.message}` : d.message)).join('; ')}`, details);
}
