import { z } from 'zod';
import { BUCKET_NAME, folderUriSchema } from '@visionq/api';

/**
 * `predict`: POST /predict; `tasks:write`: submit and cancel tasks; `tasks:read`: read
 * tasks, results and events; `admin`: metrics, queue admin, and every tenant's tasks.
 */
export const SCOPES = ['predict', 'tasks:write', 'tasks:read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** A tenant's name: it becomes a folder of the uploads and results prefixes. */
export const TENANT_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** One entry of the keys file (`API_KEYS_FILE`): the key itself is never stored, only its SHA-256. */
export const apiKeyEntrySchema = z.strictObject({
  id: z.string().min(1).max(100),
  tenant: z.string().regex(TENANT_NAME, 'lower-case letters, digits, "_" and "-", at most 63'),
  key_sha256: z.string().regex(/^[0-9a-f]{64}$/, 'the hex SHA-256 of the key'),
  scopes: z.array(z.enum(SCOPES)).min(1),
  /** Where the tenant may read and write: bucket names or `s3://bucket/prefix/` folders; absent = every bucket of ALLOWED_BUCKETS. */
  buckets: z.array(z.union([z.string().regex(BUCKET_NAME), folderUriSchema])).min(1).optional(),
  /** Requests per second for this tenant (all its keys), across every gateway. */
  rate_per_s: z.number().positive().optional(),
  /** Images of this tenant's unfinished tasks at once. */
  images_in_flight: z.number().int().positive().optional(),
  /** Images this tenant may submit per UTC day. */
  images_per_day: z.number().int().positive().optional(),
  /** Signs the tenant's callbacks (Standard Webhooks, `whsec_<base64>`); every entry's secret of a tenant signs, so one can be rotated. */
  webhook_secret: z.string().regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, 'expected whsec_<base64>').optional(),
  created_at: z.string().optional(),
  description: z.string().max(500).optional(),
});
export type ApiKeyEntry = z.infer<typeof apiKeyEntrySchema>;

/** The keys file: a JSON array of entries, ids unique (the shape a Kubernetes Secret mounts as one file). */
export const apiKeysFileSchema = z.array(apiKeyEntrySchema).superRefine((entries, ctx) => {
  const seen = new Set<string>();
  entries.forEach((entry, i) => {
    if (seen.has(entry.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `id "${entry.id}" is used twice` });
    seen.add(entry.id);
  });
});
