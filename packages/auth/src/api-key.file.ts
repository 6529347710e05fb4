import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ConfigError } from '@visionq/api';
import { apiKeyEntrySchema, apiKeysFileSchema, type ApiKeyEntry, type Scope } from './api-key.schema';
import { sha256 } from './api-key.store';

export interface NewKey {
  tenant: string;
  scopes: Scope[];
  id?: string;
  buckets?: string[];
  description?: string;
  quotas?: Pick<ApiKeyEntry, 'rate_per_s' | 'images_in_flight' | 'images_per_day'>;
  webhookSecret?: string;
}

/**
 * Appends a new key to the keys file at `path` (created when missing) and returns the
 * secret, which exists nowhere else: the file keeps its SHA-256 only. The file is replaced
 * whole (temp file, then rename), so a gateway never reads half of it.
 */
export async function createApiKey(path: string, key: NewKey): Promise<{ entry: ApiKeyEntry; secret: string }> {
  const entries = await readEntries(path);
  const secret = `vq_${randomBytes(32).toString('base64url')}`;
  const entry = apiKeyEntrySchema.parse({
    id: key.id ?? `k_${randomBytes(6).toString('hex')}`,
    tenant: key.tenant,
    key_sha256: sha256(secret).toString('hex'),
    scopes: key.scopes,
    ...(key.buckets?.length ? { buckets: key.buckets } : {}),
    ...(key.description ? { description: key.description } : {}),
    ...(key.webhookSecret ? { webhook_secret: key.webhookSecret } : {}),
    ...Object.fromEntries(Object.entries(key.quotas ?? {}).filter(([, v]) => v !== undefined)),
    created_at: new Date().toISOString(),
  });
  const next = apiKeysFileSchema.parse([...entries, entry]);
  const temp = join(dirname(path), `.${randomBytes(6).toString('hex')}.keys.tmp`);
  await writeFile(temp, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600 });
  await rename(temp, path);
  return { entry, secret };
}

async function readEntries(path: string): Promise<ApiKeyEntry[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const parsed = apiKeysFileSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new ConfigError(`${path} is not a valid keys file: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  return parsed.data;
}
