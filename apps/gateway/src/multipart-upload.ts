import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import type { Request } from 'express';
import busboy from 'busboy';
import { ErrorCode, VisionqError } from '@visionq/api';
import { joinObjectUri, type ObjectStore } from '@visionq/object-store';
import type { Logger } from '@visionq/observability';

export interface UploadOptions {
  store: ObjectStore;
  /** Folder the files go to, `s3://bucket/prefix/`. */
  folder: string;
  /** The only field files may come in. */
  fileField: string;
  maxFiles: number;
  maxFileBytes: number;
  /** Told, once everything of a refused upload is cleaned up: `upload refused`, why and what was removed. */
  log: Logger;
}

export interface UploadedForm {
  fields: Record<string, string>;
  /** URIs of the stored files, in upload order. */
  files: string[];
  /** Digest of the fields and every file's bytes: the request's identity for Idempotency-Key. */
  digest: string;
}

/** Limits of a form besides its files: each one, when passed, is a 4xx naming it, never a silent drop. */
export const FORM_LIMITS = { fields: 32, fieldBytes: 64 * 1024, fieldNameBytes: 100, parts: 10_032 } as const;

interface StoredFile {
  uri: string;
  /** The stream the store reads: destroying it aborts the put, which then removes what it wrote. */
  body: Transform;
  digest: Promise<string>;
  done: Promise<void>;
}

/**
 * Streams a multipart request's files into the store as they arrive (never whole in
 * memory) and collects its text fields. Whatever goes wrong (a limit passed, a broken
 * form, a client gone mid-upload), every put in flight is aborted and every file stored
 * is deleted again before this rejects: a refused request leaves nothing behind and holds
 * nothing open.
 */
export async function receiveUpload(req: Request, options: UploadOptions): Promise<UploadedForm> {
  // The client may be gone before the route runs: its close came and went, unheard.
  if (req.destroyed) {
    const gone = new VisionqError(ErrorCode.InvalidRequest, 'the client went away before the upload ended');
    options.log.info('upload refused', { reason: gone.message, files_removed: 0 });
    throw gone;
  }
  const fields: Record<string, string> = {};
  const stored: StoredFile[] = [];
  let problem: VisionqError | undefined;
  const refuse = (err: VisionqError) => (problem ??= err);
  /** The upload has failed: a file the parser still finds in what it had buffered is not stored. */
  let failed = false;

  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      limits: {
        files: options.maxFiles,
        fileSize: options.maxFileBytes,
        fields: FORM_LIMITS.fields,
        fieldSize: FORM_LIMITS.fieldBytes,
        fieldNameSize: FORM_LIMITS.fieldNameBytes,
        parts: FORM_LIMITS.parts,
      },
    });
  } catch (err) {
    throw new VisionqError(ErrorCode.InvalidRequest, `malformed multipart request: ${(err as Error).message}`);
  }

  parser.on('field', (name, value, info) => {
    if (info.nameTruncated) refuse(new VisionqError(ErrorCode.InvalidRequest, `a form field name is over ${FORM_LIMITS.fieldNameBytes} bytes`, [{ field: name, message: 'name too long' }]));
    else if (info.valueTruncated) refuse(new VisionqError(ErrorCode.PayloadTooLarge, `form field ${name} is over ${FORM_LIMITS.fieldBytes} bytes`, [{ field: name, message: 'too long' }]));
    else if (Object.hasOwn(fields, name)) refuse(new VisionqError(ErrorCode.InvalidRequest, `form field ${name} is given twice`, [{ field: name, message: 'repeated' }]));
    else fields[name] = value;
  });
  parser.on('file', (name, stream, info) => {
    stream.on('error', (err: Error) => refuse(malformed(err))); // the form broke off mid-file
    if (failed) {
      stream.resume();
      return;
    }
    if (name !== options.fileField || problem) {
      if (!problem) refuse(new VisionqError(ErrorCode.InvalidRequest, `files go in the field "${options.fileField}", not "${name}"`, [{ field: name, message: 'unexpected file field' }]));
      stream.resume();
      return;
    }
    const uri = joinObjectUri(options.folder, `${String(stored.length).padStart(5, '0')}-${safeName(info.filename)}`);
    const hash = createHash('sha256');
    let resolveDigest!: (d: string) => void;
    const digest = new Promise<string>((resolve) => (resolveDigest = resolve));
    const body = new Transform({
      transform(piece: Buffer, _encoding, callback) {
        hash.update(piece);
        callback(null, piece);
      },
      flush(callback) {
        resolveDigest(hash.digest('hex'));
        callback();
      },
    });
    // Errors of the file stream do not travel through pipe(): carry them to the put.
    stream.on('error', (err: Error) => body.destroy(err));
    stream.on('limit', () => {
      refuse(new VisionqError(ErrorCode.PayloadTooLarge, `file ${info.filename} is over MAX_IMAGE_BYTES=${options.maxFileBytes}`, [{ field: name, message: info.filename ?? 'file' }]));
      // Drain the rest of the file (a file stream left unread stalls the whole form), then
      // abort the put. Unpipe first: unpiping its last destination pauses a stream again.
      stream.unpipe(body);
      stream.resume();
      body.destroy(problem);
    });
    const done = options.store.put(uri, stream.pipe(body), { contentType: info.mimeType });
    done.catch(() => undefined); // settled below, with every other put; must not be unhandled meanwhile
    stored.push({ uri, body, digest, done });
  });
  parser.on('filesLimit', () => refuse(new VisionqError(ErrorCode.PayloadTooLarge, `at most ${options.maxFiles} files per request`, [{ field: options.fileField, message: 'too many files' }])));
  parser.on('fieldsLimit', () => refuse(new VisionqError(ErrorCode.PayloadTooLarge, `at most ${FORM_LIMITS.fields} form fields per request`, [{ message: 'too many fields' }])));
  parser.on('partsLimit', () => refuse(new VisionqError(ErrorCode.PayloadTooLarge, `at most ${FORM_LIMITS.parts} parts per request`, [{ message: 'too many parts' }])));

  const finished = new Promise<void>((resolve, reject) => {
    parser.on('close', resolve);
    parser.on('error', (err: Error) => reject(malformed(err)));
    req.on('error', (err: Error) => reject(new VisionqError(ErrorCode.InvalidRequest, `the upload broke off: ${err.message}`, [], { cause: err })));
    // A client gone mid-body: no more bytes, nor an end, will ever come.
    req.on('close', () => {
      if (!req.complete) reject(new VisionqError(ErrorCode.InvalidRequest, 'the client went away before the upload ended'));
    });
  });
  req.pipe(parser);

  try {
    await finished;
    await Promise.all(stored.map((s) => s.done));
    if (problem) throw problem;
  } catch (err) {
    failed = true;
    req.unpipe(parser);
    const reason = problem ?? (err as Error);
    for (const file of stored) file.body.destroy(reason);
    const puts = await Promise.allSettled(stored.map((s) => s.done));
    // Best effort: a store that refuses the delete now is down, and the client must hear why
    // its request failed rather than that; uploads/ is the place a sweep would look.
    await Promise.all(stored.filter((_, i) => puts[i]!.status === 'fulfilled').map((s) => options.store.delete(s.uri).catch(() => undefined)));
    req.resume(); // drain what a client still sends, so the answer can reach it
    const refusal = problem ?? (err as Error);
    options.log.info('upload refused', { reason: refusal.message, files_removed: stored.length });
    throw refusal;
  }
  const digest = createHash('sha256').update(JSON.stringify(Object.entries(fields).sort()));
  for (const file of stored) digest.update(await file.digest);
  return { fields, files: stored.map((s) => s.uri), digest: digest.digest('hex') };
}

function malformed(err: Error): VisionqError {
  return new VisionqError(ErrorCode.InvalidRequest, `malformed multipart request: ${err.message}`, [], { cause: err });
}

/** Keeps a file name readable in a key while refusing anything path-like. */
function safeName(filename: string | undefined): string {
  const base = (filename ?? '').split(/[\\/]/).pop() ?? '';
  const safe = base.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '').slice(-100);
  return safe.length > 0 ? safe : 'upload';
}
