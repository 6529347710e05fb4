import type { ObjectStore } from './object-store';
import { LocalObjectStore } from './local.object-store';
import { S3ObjectStore } from './s3.object-store';

/** The `store` section of the config. */
export interface StoreOptions {
  kind: 'local' | 's3';
  dataDir: string;
  s3Endpoint: string;
  s3Region: string;
  s3ForcePathStyle: boolean;
  s3AccessKeyId: string;
  s3SecretAccessKey: string;
}

/** The store the config names. */
export function openObjectStore(options: StoreOptions): ObjectStore {
  if (options.kind === 'local') return new LocalObjectStore(options.dataDir);
  return new S3ObjectStore({
    endpoint: options.s3Endpoint || undefined,
    region: options.s3Region,
    forcePathStyle: options.s3ForcePathStyle,
    credentials: options.s3AccessKeyId ? { accessKeyId: options.s3AccessKeyId, secretAccessKey: options.s3SecretAccessKey } : undefined,
  });
}
