import type { Config } from '@visionq/config';
import type { ObjectStore } from './object-store';
import { LocalObjectStore } from './local.object-store';
import { S3ObjectStore } from './s3.object-store';

/** The store the config names. */
export function openObjectStore(options: Config['store']): ObjectStore {
  if (options.kind === 'local') return new LocalObjectStore(options.dataDir);
  return new S3ObjectStore({
    endpoint: options.s3Endpoint || undefined,
    region: options.s3Region,
    forcePathStyle: options.s3ForcePathStyle,
    credentials: options.s3AccessKeyId ? { accessKeyId: options.s3AccessKeyId, secretAccessKey: options.s3SecretAccessKey } : undefined,
  });
}
