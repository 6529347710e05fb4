import { BUCKET_NAME, ErrorCode, VisionqError } from '@visionq/api';

/** An object address. Every store, local or S3, is addressed as `s3://bucket/key`. */
export interface ObjectUri {
  bucket: string;
  /** Empty for a whole bucket; ends in `/` for a folder-like prefix. */
  key: string;
}

/**
 * Parses `s3://bucket/key`. A malformed URI is the caller's mistake: InvalidArgument,
 * naming `field` when given.
 */
export function parseObjectUri(uri: string, field?: string): ObjectUri {
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(uri);
  if (!match || !BUCKET_NAME.test(match[1]!)) {
    throw new VisionqError(ErrorCode.InvalidArgument, `not an object URI: ${JSON.stringify(uri)} (expected s3://bucket/key)`, [
      { field, message: 'expected s3://bucket/key' },
    ]);
  }
  return { bucket: match[1]!, key: match[2] ?? '' };
}

export function formatObjectUri(uri: ObjectUri): string {
  return `s3://${uri.bucket}/${uri.key}`;
}

/** `s3://b/prefix/` + `name` → `s3://b/prefix/name`. */
export function joinObjectUri(folder: string, name: string): string {
  return folder.endsWith('/') ? folder + name : `${folder}/${name}`;
}
