import { createHash } from 'node:crypto';
import type { Request } from 'express';
import { ErrorCode, VisionqError } from '@visionq/errors';
import type { BucketPolicy } from '@visionq/object-store';
import { parseObjectUri } from '@visionq/object-store';

export function isMultipart(req: Request): boolean {
  return req.is('multipart/form-data') === 'multipart/form-data';
}

/** JSON or multipart; anything else is 415 before the body is read. */
export function requireJson(req: Request): void {
  if (!req.is('application/json')) {
    throw new VisionqError(ErrorCode.UnsupportedMediaType, `send application/json or multipart/form-data, not ${req.get('content-type') ?? 'no content type'}`);
  }
}

/** An object URI naming one image (not a folder) in a bucket tasks may read. */
export function checkImageUri(buckets: BucketPolicy, uri: string, field: string): void {
  const { key } = parseObjectUri(uri, field);
  if (key === '' || key.endsWith('/')) {
    throw new VisionqError(ErrorCode.InvalidArgument, `${field}: ${uri} names a folder, not an image`, [{ field, message: 'expected s3://bucket/key of one image' }]);
  }
  buckets.check(uri, field);
}

/** A JSON request's identity for Idempotency-Key. */
export function digestOf(body: unknown): string {
  return createHash('sha256').update(JSON.stringify(body)).digest('hex');
}
