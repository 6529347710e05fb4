import { z } from 'zod';

/** S3's bucket naming rule (lower-case, 3–63 characters), for the local store's folders too. */
export const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** A folder of an object store: `s3://bucket/` or `s3://bucket/prefix/`, ending in `/`. */
export const folderUriSchema = z
  .string()
  .regex(new RegExp(`^s3://${BUCKET_NAME.source.slice(1, -1)}/(.+/)?$`), 'expected s3://bucket/prefix/ (ending in /)');
