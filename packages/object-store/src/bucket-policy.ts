import { ErrorCode, VisionqError } from '@visionq/api';
import { parseObjectUri } from './object-uri';

/**
 * The buckets tasks may read and write: the allow-list of the config. `'*'` in the list
 * allows every bucket. Both methods throw InvalidArgument for a malformed URI, as
 * parseObjectUri does: a bad address is a different mistake from a forbidden one.
 */
export class BucketPolicy {
  private readonly buckets: ReadonlySet<string>;

  constructor(allowedBuckets: string[]) {
    this.buckets = new Set(allowedBuckets);
  }

  allows(uri: string): boolean {
    return this.allowsBucket(parseObjectUri(uri).bucket);
  }

  /** Throws Forbidden, naming `field` when given, unless the URI's bucket is allowed. */
  check(uri: string, field?: string): void {
    const { bucket } = parseObjectUri(uri, field);
    if (!this.allowsBucket(bucket)) {
      throw new VisionqError(ErrorCode.Forbidden, `bucket "${bucket}" is not allowed`, [{ field, message: `bucket "${bucket}" is not in the allowed buckets` }]);
    }
  }

  private allowsBucket(bucket: string): boolean {
    return this.buckets.has('*') || this.buckets.has(bucket);
  }
}
