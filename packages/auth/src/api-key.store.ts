import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { unwatchFile, watchFile } from 'node:fs';
import { ConfigError } from '@visionq/api';
import type { Logger } from '@visionq/observability';
import { apiKeysFileSchema, type ApiKeyEntry } from './api-key.schema';
import type { Principal } from './principal';

/** How often the keys file is looked at for changes (a revoked key stops working within this). */
const WATCH_INTERVAL_MS = 1_000;

interface LoadedKey {
  hash: Buffer;
  principal: Principal;
  webhookSecret?: string;
}

/**
 * The keys of `API_KEYS_FILE`, re-read whenever the file changes (a Kubernetes Secret's
 * update swaps a symlink: the file is polled by stat, which follows it), so a key is
 * added or revoked without a restart. A file that turns invalid is refused with a log
 * line and the keys loaded before stay in force.
 */
export class ApiKeyStore {
  private keys: LoadedKey[] = [];
  private closed = false;

  private constructor(
    private readonly path: string,
    private readonly logger: Logger,
  ) {}

  /** Loads the file (a missing or invalid one stops start-up with its reason) and starts watching it. */
  static async open(path: string, logger: Logger): Promise<ApiKeyStore> {
    const store = new ApiKeyStore(path, logger);
    store.keys = await store.read();
    watchFile(path, { interval: WATCH_INTERVAL_MS, persistent: false }, () => void store.reload());
    return store;
  }

  /** The principal of `secret`, or null. Every entry is compared, in constant time, whichever matches. */
  authenticate(secret: string): Principal | null {
    const hash = sha256(secret);
    let found: Principal | null = null;
    for (const key of this.keys) {
      if (timingSafeEqual(key.hash, hash)) found ??= key.principal;
    }
    return found;
  }

  /** Every callback signing secret of a tenant's entries (two while one is being rotated). */
  webhookSecretsOf(tenant: string): string[] {
    return [...new Set(this.keys.filter((k) => k.principal.tenant === tenant && k.webhookSecret).map((k) => k.webhookSecret!))];
  }

  close(): void {
    this.closed = true;
    unwatchFile(this.path);
  }

  private async reload(): Promise<void> {
    if (this.closed) return;
    try {
      this.keys = await this.read();
      this.logger.info('API keys reloaded', { file: this.path, keys: this.keys.length });
    } catch (err) {
      this.logger.error('API keys file refused; the keys loaded before stay in force', { file: this.path, error: (err as Error).message });
    }
  }

  private async read(): Promise<LoadedKey[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      throw new ConfigError(`API_KEYS_FILE=${this.path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, [{ field: 'API_KEYS_FILE', message: 'unreadable' }]);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(`API_KEYS_FILE=${this.path} is not JSON: ${(err as Error).message}`, [{ field: 'API_KEYS_FILE', message: 'not JSON' }]);
    }
    const parsed = apiKeysFileSchema.safeParse(json);
    if (!parsed.success) {
      const why = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
      throw new ConfigError(`API_KEYS_FILE=${this.path}: ${why}`, [{ field: 'API_KEYS_FILE', message: why }]);
    }
    return parsed.data.map((entry) => ({ hash: Buffer.from(entry.key_sha256, 'hex'), principal: principalOf(entry), webhookSecret: entry.webhook_secret }));
  }
}

export function sha256(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

function principalOf(entry: ApiKeyEntry): Principal {
  return {
    keyId: entry.id,
    tenant: entry.tenant,
    scopes: new Set(entry.scopes),
    folder: `${entry.tenant}/`,
    ...(entry.buckets ? { buckets: entry.buckets } : {}),
    quotas: { ratePerSecond: entry.rate_per_s, imagesInFlight: entry.images_in_flight, imagesPerDay: entry.images_per_day },
  };
}
