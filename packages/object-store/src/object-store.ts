import type { Readable } from 'node:stream';

/** One object as listed. */
export interface ObjectInfo {
  /** `s3://bucket/key`. */
  uri: string;
  key: string;
  size: number;
}

export interface ListPage {
  /** In key order (byte order of UTF-8 keys, as S3 lists them). */
  objects: ObjectInfo[];
  /** Pass back to get the next page; null on the last page. Opaque to callers. */
  nextCursor: string | null;
}

export interface ObjectBody {
  body: Readable;
  size: number;
  contentType?: string;
}

export type PutBody = Buffer | string | Readable;

/**
 * Objects addressed by URI, whatever holds them (a local folder, S3, MinIO, …).
 *
 * Errors: an absent object or bucket is ObjectNotFoundError; a refused one is
 * ObjectAccessDeniedError; a body above a size limit is ObjectTooLargeError; a key that
 * escapes the store's root is InvalidArgument. Everything that may pass by itself
 * (network, throttling, 5xx) is StoreUnavailableError, which callers retry with backoff.
 */
export interface ObjectStore {
  /** Streams an object's bytes. */
  get(uri: string): Promise<ObjectBody>;
  /** Reads a whole object; refuses one over `maxBytes` without reading all of it. */
  getBytes(uri: string, maxBytes: number): Promise<Buffer>;
  /** Writes an object whole: readers see the old bytes or the new, never a mix. Large streams go up in parts. */
  put(uri: string, body: PutBody, options?: { contentType?: string }): Promise<void>;
  /** One page of the objects whose key starts with the prefix of `prefixUri`. */
  list(prefixUri: string, options: { cursor?: string | null; limit: number }): Promise<ListPage>;
  /** Removes an object; absent is fine. */
  delete(uri: string): Promise<void>;
  /** Releases connections. Idempotent. */
  close(): void;
}
