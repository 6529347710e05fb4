import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { PassThrough, Readable } from 'node:stream';
import { ErrorCode, VisionqError } from '@visionq/api';
import type { ListPage, ObjectBody, ObjectStore, PutBody } from './object-store';
import { ObjectAccessDeniedError, ObjectNotFoundError, ObjectTooLargeError, StoreUnavailableError } from './object-store.errors';
import { formatObjectUri, parseObjectUri } from './object-uri';

export interface S3StoreOptions {
  /** Base URL of an S3-compatible server (MinIO, …). Default: AWS's endpoint for `region`. */
  endpoint?: string;
  /** AWS region to sign for; S3-compatible servers accept any (us-east-1 is usual). */
  region: string;
  /** Address buckets as `endpoint/bucket` rather than `bucket.endpoint`; most self-hosted servers need it. */
  forcePathStyle: boolean;
  /** Default: the AWS SDK's chain (environment, shared files, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** Tries per request, the first included; the SDK backs off between them. */
const MAX_ATTEMPTS = 3;
/** A dead endpoint fails after MAX_ATTEMPTS × this, plus backoff. */
const CONNECTION_TIMEOUT_MS = 5_000;
/** Longest wait for a response's headers, and longest silence on a socket mid-body. */
const REQUEST_TIMEOUT_MS = 60_000;
/** Bytes per part of a multipart upload; bodies that fit in one go up with a single PutObject. */
const PART_SIZE = 8 * 1024 * 1024;
/** Parts of one upload in flight (and buffered) at once. */
const PART_QUEUE = 4;

const NOT_FOUND = new Set(['NoSuchKey', 'NotFound', 'NoSuchBucket']);
/** Error names S3 uses for "try again later" (5xx and 429 are caught by status). */
const THROTTLED = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestTimeout']);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * Objects in S3 or an S3-compatible server (MinIO, moto, …).
 *
 * Contract, beyond ObjectStore's:
 * - Buckets must exist: a missing one is ObjectNotFoundError, for list too.
 * - Checksums are sent and checked only where S3 requires them, as some S3-compatible
 *   servers reject the SDK's newer default ones (CRC32 on every put).
 * - A request is tried MAX_ATTEMPTS times with the SDK's backoff; connecting and
 *   waiting are bounded, so an unreachable endpoint is StoreUnavailableError in seconds.
 * - The body from get reports a connection lost mid-object as StoreUnavailableError too.
 * - After close(), every call is StoreUnavailableError.
 */
export class S3ObjectStore implements ObjectStore {
  private readonly client: S3Client;
  private closed = false;

  constructor(options: S3StoreOptions) {
    this.client = new S3Client({
      endpoint: options.endpoint,
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      credentials: options.credentials,
      maxAttempts: MAX_ATTEMPTS,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        connectionTimeout: CONNECTION_TIMEOUT_MS,
        requestTimeout: REQUEST_TIMEOUT_MS,
        throwOnRequestTimeout: true,
        socketTimeout: REQUEST_TIMEOUT_MS,
      },
    });
  }

  async get(uri: string): Promise<ObjectBody> {
    const { bucket, key } = objectKey(uri);
    const out = await this.call(uri, () => this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key })));
    const body = out.Body;
    if (!(body instanceof Readable) || out.ContentLength === undefined) {
      if (body instanceof Readable) body.destroy();
      throw new Error(`S3 answered GetObject ${uri} without a Node stream body and a Content-Length`);
    }
    return { body: mapBodyErrors(body, uri), size: out.ContentLength, ...(out.ContentType ? { contentType: out.ContentType } : {}) };
  }

  async getBytes(uri: string, maxBytes: number): Promise<Buffer> {
    const { body, size } = await this.get(uri);
    if (size > maxBytes) {
      body.destroy();
      throw new ObjectTooLargeError(uri, size, maxBytes);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      total += chunk.length;
      // A server may send more than it announced: stop at the limit all the same (leaving the loop destroys the body).
      if (total > maxBytes) throw new ObjectTooLargeError(uri, total, maxBytes);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks, total);
  }

  async put(uri: string, body: PutBody, options: { contentType?: string } = {}): Promise<void> {
    const { bucket, key } = objectKey(uri);
    let bodyError: unknown;
    if (body instanceof Readable) body.once('error', (err) => (bodyError = err));
    const upload = new Upload({
      client: this.client,
      params: { Bucket: bucket, Key: key, Body: body, ContentType: options.contentType },
      partSize: PART_SIZE,
      queueSize: PART_QUEUE,
    });
    try {
      await this.call(uri, () => upload.done());
    } catch (err) {
      // A failed put consumes no more of the caller's stream (the local store's pipeline does the same).
      if (body instanceof Readable) body.destroy();
      // When the caller's stream failed, that is what went wrong, and it is the caller's error, not the store's.
      throw bodyError ?? err;
    }
  }

  async list(prefixUri: string, options: { cursor?: string | null; limit: number }): Promise<ListPage> {
    const { limit } = options;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new VisionqError(ErrorCode.InvalidArgument, `list limit must be a positive integer, got ${limit}`, [{ field: 'limit', message: 'expected a positive integer' }]);
    }
    const { bucket, key: prefix } = parseObjectUri(prefixUri);
    const out = await this.call(prefixUri, () =>
      this.client.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, MaxKeys: limit, ContinuationToken: options.cursor ?? undefined }),
      ),
    );
    const objects = (out.Contents ?? []).map((o) => ({ uri: formatObjectUri({ bucket, key: o.Key! }), key: o.Key!, size: o.Size ?? 0 }));
    return { objects, nextCursor: out.IsTruncated ? (out.NextContinuationToken ?? null) : null };
  }

  async delete(uri: string): Promise<void> {
    const { bucket, key } = objectKey(uri);
    await this.call(uri, () => this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.destroy();
  }

  /** Runs one SDK call, with S3's errors turned into the store's. */
  private async call<T>(uri: string, request: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreUnavailableError(`object store is closed (${uri})`);
    try {
      return await request();
    } catch (err) {
      throw storeError(err, uri);
    }
  }
}

/** Bucket and key of an object URI; S3 has no object without a key. */
function objectKey(uri: string): { bucket: string; key: string } {
  const parsed = parseObjectUri(uri);
  if (parsed.key === '') {
    throw new VisionqError(ErrorCode.InvalidArgument, `object URI ${JSON.stringify(uri)} has no key`, [{ field: 'uri', message: 'the key is empty' }]);
  }
  return parsed;
}

/**
 * The body handed to callers: the SDK's stream, whose errors mid-object (a reset
 * connection, a socket timeout) become StoreUnavailableError. Destroying it releases the
 * SDK's stream and its connection.
 */
function mapBodyErrors(body: Readable, uri: string): Readable {
  const out = new PassThrough();
  body.once('error', (err) => out.destroy(storeError(err, uri) as Error));
  out.once('close', () => body.destroy());
  return body.pipe(out);
}

/** The store error for a failed S3 call; errors of other kinds pass unchanged. */
function storeError(err: unknown, uri: string): unknown {
  const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } } | null;
  const status = e?.$metadata?.httpStatusCode;
  const name = e?.name ?? '';
  if (NOT_FOUND.has(name) || status === 404) return new ObjectNotFoundError(uri);
  if (name === 'AccessDenied' || status === 403) return new ObjectAccessDeniedError(uri);
  const transient =
    (status !== undefined && (status >= 500 || status === 429)) || THROTTLED.has(name) || name === 'TimeoutError' || NETWORK_CODES.has(e?.code ?? '');
  if (transient) return new StoreUnavailableError(`object store unavailable for ${uri}: ${e?.message || name}`, { cause: err });
  return err;
}
