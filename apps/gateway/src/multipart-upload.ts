import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import type { Request } from 'express';
import busboy from 'busboy';
import { ErrorCode, VisionqError } from '@visionq/api';
import { joinObjectUri, type ObjectStore } from '@visionq/object-store';

export interface UploadOptions {
  store: ObjectStore;
  /** Folder the files go to, `s3://bucket/prefix/`. */
  folder: string;
  /** The only field files may come in. */
  fileField: string;
  maxFiles: number;
  maxFileBytes: number;
}

export interface UploadedForm {
  fields: Record<string, string>;
  /** URIs of the stored files, in upload order. */
  files: string[];
  /** Digest of the fields and every file's bytes: the request's identity for Idempotency-Key. */
  digest: string;
}

const MAX_FIELD_BYTES = 64 * 1024;

/**
 * Streams a multipart request's files into the store as they arrive (never whole in
 * memory) and collects its text fields. On any problem every file stored so far is
 * deleted again, so a refused request leaves nothing behind.
 */
export async function receiveUpload(req: Request, options: UploadOptions): Promise<UploadedForm> {
  const fields: Record<string, string> = {};
  const stored: { uri: string; digest: Promise<string>; done: Promise<void> }[] = [];
  let problem: VisionqError | undefined;
  const refuse = (err: VisionqError) => (problem ??= err);

  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      limits: { files: options.maxFiles, fileSize: options.maxFileBytes, fields: 50, fieldSize: MAX_FIELD_BYTES },
    });
  } catch (err) {
    throw new VisionqError(ErrorCode.InvalidRequest, `malformed multipart request: ${(err as Error).message}`);
  }

  parser.on('field', (name, value, info) => {
    if (info.valueTruncated) refuse(new VisionqError(ErrorCode.PayloadTooLarge, `form field ${name} is over ${MAX_FIELD_BYTES} bytes`, [{ field: name, message: 'too long' }]));
    fields[name] = value;
  });
  parser.on('file', (name, stream, info) => {
    if (name !== options.fileField || problem) {
      if (!problem) refuse(new VisionqError(ErrorCode.InvalidRequest, `files go in the field "${options.fileField}", not "${name}"`, [{ field: name, message: 'unexpected file field' }]));
      stream.resume();
      return;
    }
    const uri = joinObjectUri(options.folder, `${String(stored.length).padStart(5, '0')}-${safeName(info.filename)}`);
    const hash = createHash('sha256');
    let resolveDigest!: (d: string) => void;
    const digest = new Promise<string>((resolve) => (resolveDigest = resolve));
    const hashing = new Transform({
      transform(piece: Buffer, _encoding, callback) {
        hash.update(piece);
        callback(null, piece);
      },
      flush(callback) {
        resolveDigest(hash.digest('hex'));
        callback();
      },
    });
    stream.on('limit', () =>
      refuse(new VisionqError(ErrorCode.PayloadTooLarge, `file ${info.filename} is over MAX_IMAGE_BYTES=${options.maxFileBytes}`, [{ field: name, message: info.filename ?? 'file' }])),
    );
    const done = options.store.put(uri, stream.pipe(hashing), { contentType: info.mimeType });
    done.catch(() => undefined); // awaited below; a failure must not be unhandled meanwhile
    stored.push({ uri, digest, done });
  });
  parser.on('filesLimit', () => refuse(new VisionqError(ErrorCode.InvalidRequest, `at most ${options.maxFiles} files per request`, [{ field: options.fileField, message: 'too many files' }])));

  const finished = new Promise<void>((resolve, reject) => {
    parser.on('close', resolve);
    parser.on('error', (err: Error) => reject(new VisionqError(ErrorCode.InvalidRequest, `malformed multipart request: ${err.message}`)));
    req.on('error', reject);
  });
  req.pipe(parser);

  try {
    await finished;
    await Promise.all(stored.map((s) => s.done));
    if (problem) throw problem;
  } catch (err) {
    // Best effort: a store that refuses the delete now is down, and the client must hear why
    // its request failed rather than that; uploads/ is the place a sweep would look.
    await Promise.all(stored.map((s) => options.store.delete(s.uri).catch(() => undefined)));
    throw err;
  }
  const digest = createHash('sha256').update(JSON.stringify(Object.entries(fields).sort()));
  for (const file of stored) digest.update(await file.digest);
  return { fields, files: stored.map((s) => s.uri), digest: digest.digest('hex') };
}

/** Keeps a file name readable in a key while refusing anything path-like. */
function safeName(filename: string | undefined): string {
  const base = (filename ?? '').split(/[\\/]/).pop() ?? '';
  const safe = base.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '').slice(-100);
  return safe.length > 0 ? safe : 'upload';
}
