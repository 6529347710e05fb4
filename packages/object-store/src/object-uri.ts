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

/** S3's limit. */
const MAX_KEY_BYTES = 1024;
/** Longest file name on common file systems (ext4, xfs, APFS), so a local store can hold every key. */
const MAX_SEGMENT_BYTES = 255;

/**
 * Refuses keys that are not plain relative paths, so that every store (a local folder as
 * much as S3) holds the same keys, and no key can climb out of its bucket or prefix. A
 * list prefix may be empty or end in `/`, and its last segment is only matched as text.
 * InvalidArgument, naming `field` when given.
 */
export function checkObjectKey(key: string, uri: string, isPrefix: boolean, field?: string): void {
  const segments = key.split('/');
  const last = isPrefix ? segments.pop()! : undefined;
  let problem: string | undefined;
  if (!isPrefix && key === '') problem = 'the key is empty';
  else if (Buffer.byteLength(key) > MAX_KEY_BYTES) problem = `the key is over ${MAX_KEY_BYTES} bytes`;
  else if (/[\\\u0000-\u001f\u007f]/.test(key)) problem = 'the key holds a backslash or a control character';
  else if (segments.some((s) => s === '' || s === '.' || s === '..')) problem = 'the key has an empty, "." or ".." segment';
  else if ([...segments, last ?? ''].some((s) => Buffer.byteLength(s) > MAX_SEGMENT_BYTES)) problem = `a key segment is over ${MAX_SEGMENT_BYTES} bytes`;
  if (problem) {
    throw new VisionqError(ErrorCode.InvalidArgument, `bad object key in ${JSON.stringify(uri)}: ${problem}`, [{ field: field ?? 'uri', message: problem }]);
  }
}
