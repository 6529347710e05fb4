import { randomUUID } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { mkdir, open, readdir, rename, rm, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ErrorCode, VisionqError } from '@visionq/api';
import type { ListPage, ObjectBody, ObjectInfo, ObjectStore, PutBody } from './object-store';
import { ObjectAccessDeniedError, ObjectNotFoundError, ObjectTooLargeError, StoreUnavailableError } from './object-store.errors';
import { checkObjectKey, formatObjectUri, parseObjectUri } from './object-uri';

/**
 * Names of in-progress puts. Keys may not use it in any segment, so a temp file can never
 * be taken for an object (list skips them) nor collide with one.
 */
const TEMP_PREFIX = '.vq-put-';
/** Times put re-creates its folder when a concurrent delete pruned it in between. */
const PUT_FOLDER_ATTEMPTS = 3;

/**
 * Objects as files: bucket `b` is the folder `<root>/b`, key `k` the file `<root>/b/k`.
 * The single-machine store; it speaks the same `s3://` URIs as S3.
 *
 * Contract, beyond ObjectStore's:
 * - A bucket needs no creating: the first put makes its folder, and a bucket without a
 *   folder is empty (list gives an empty page, get finds nothing).
 * - Keys are relative paths: a `..` or `.` segment, an empty segment (`a//b`, `/a`, `a/`),
 *   a backslash, NUL, a segment over 255 bytes or a key over 1024 bytes is InvalidArgument,
 *   so no key reaches outside its bucket folder.
 * - A file system cannot hold both `a` and `a/b`: a put that would need one where the
 *   other is is Conflict. Delete removes the folders it leaves empty, so once `a/b` is
 *   gone `a` can be written.
 * - put writes a temp file in the target folder, flushes it to disk and renames it over
 *   the target: readers, and a crash, see the old bytes or the new. A failed put destroys
 *   a stream body, as stream.pipeline does; an error of the body itself is rethrown as it is.
 * - contentType is not kept.
 * - Listing reads and sorts each folder that can hold matching keys, from the start, on
 *   every page: fine for the folders of one machine, not for millions of files in one.
 */
export class LocalObjectStore implements ObjectStore {
  private readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  async get(uri: string): Promise<ObjectBody> {
    const { handle, size } = await this.openFile(uri);
    return { body: handle.createReadStream(), size };
  }

  async getBytes(uri: string, maxBytes: number): Promise<Buffer> {
    const { handle, size } = await this.openFile(uri);
    try {
      if (size > maxBytes) throw new ObjectTooLargeError(uri, size, maxBytes);
      // Puts replace files by rename and never write into one, so this open file keeps the size stat saw.
      return await handle.readFile();
    } finally {
      await handle.close();
    }
  }

  async put(uri: string, body: PutBody): Promise<void> {
    const source = body instanceof Readable ? body : Readable.from([typeof body === 'string' ? Buffer.from(body) : body]);
    // An error of the body before the pipeline takes it must not go unhandled; the pipeline reports it.
    source.on('error', () => {});
    const { path, temp, handle } = await this.createTemp(uri).catch((err: unknown) => {
      source.destroy();
      throw err;
    });
    let renaming = false;
    try {
      await pipeline(source, handle.createWriteStream({ flush: true }));
      renaming = true;
      await rename(temp, path);
    } catch (err) {
      await rm(temp, { force: true });
      await pruneEmptyFolders(this.locate(uri).bucketDir, temp);
      if (!renaming) throw err; // The body's own error, or the disk's (ENOSPC, EIO): as they are.
      throw code(err) === 'EISDIR' ? conflict(uri) : fsError(err, uri);
    }
  }

  async list(prefixUri: string, options: { cursor?: string | null; limit: number }): Promise<ListPage> {
    const { limit } = options;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new VisionqError(ErrorCode.InvalidArgument, `list limit must be a positive integer, got ${limit}`, [{ field: 'limit', message: 'expected a positive integer' }]);
    }
    const { bucket, key: prefix } = parseObjectUri(prefixUri);
    checkKey(prefix, prefixUri, true);
    const scan: Scan = { bucketDir: join(this.root, bucket), bucket, prefix, after: options.cursor ?? '' };
    const objects: ObjectInfo[] = [];
    // Start in the deepest folder the prefix names; its last, partial segment filters names there.
    for await (const object of walk(scan, prefix.slice(0, prefix.lastIndexOf('/') + 1))) {
      if (objects.length === limit) return { objects, nextCursor: objects[limit - 1]!.key };
      objects.push(object);
    }
    return { objects, nextCursor: null };
  }

  async delete(uri: string): Promise<void> {
    const { bucketDir, path } = this.locate(uri);
    try {
      await unlink(path);
    } catch (err) {
      // No file there, or a folder: either way no object.
      if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR' || code(err) === 'EISDIR') return;
      throw fsError(err, uri);
    }
    await pruneEmptyFolders(bucketDir, path);
  }

  close(): void {}

  /** The bucket folder and file of an object URI, after checking that its key stays inside that folder. */
  private locate(uri: string): { key: string; bucketDir: string; path: string } {
    const { bucket, key } = parseObjectUri(uri);
    checkKey(key, uri, false);
    const bucketDir = join(this.root, bucket);
    return { key, bucketDir, path: join(bucketDir, ...key.split('/')) };
  }

  /** The target of a put and its temp file, created (with its folder) and open for writing. */
  private async createTemp(uri: string): Promise<{ path: string; temp: string; handle: FileHandle }> {
    const { path } = this.locate(uri);
    const temp = join(dirname(path), TEMP_PREFIX + randomUUID());
    return { path, temp, handle: await openTemp(temp, uri) };
  }

  /** Opens an object's file for reading; the caller owns the handle. */
  private async openFile(uri: string): Promise<{ handle: FileHandle; size: number }> {
    const { path } = this.locate(uri);
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      throw fsError(err, uri);
    }
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) throw new ObjectNotFoundError(uri);
      return { handle, size: stats.size };
    } catch (err) {
      await handle.close();
      throw fsError(err, uri);
    }
  }
}

/** What one list call looks for. */
interface Scan {
  bucketDir: string;
  bucket: string;
  prefix: string;
  /** Only keys above this one (the cursor; '' for the first page). */
  after: string;
}

/**
 * Yields the objects of folder `dirKey` (`''` or ending in `/`) and its sub-folders that
 * match the scan, in byte order of keys. A sub-folder sorts as its name plus `/`: every key
 * inside it starts with that, so sorting siblings that way puts whole subtrees in place
 * (`a-b` < `a/x` < `a0`). Sub-folders that cannot hold a matching key are not read.
 */
async function* walk(scan: Scan, dirKey: string): AsyncGenerator<ObjectInfo> {
  let entries: Dirent[];
  try {
    entries = await readdir(join(scan.bucketDir, ...dirKey.split('/')), { withFileTypes: true });
  } catch (err) {
    if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR') return;
    throw fsError(err, formatObjectUri({ bucket: scan.bucket, key: dirKey }));
  }
  const children = entries
    .filter((e) => (e.isFile() || e.isDirectory()) && !e.name.startsWith(TEMP_PREFIX))
    .map((e) => ({ key: dirKey + e.name + (e.isDirectory() ? '/' : ''), isDir: e.isDirectory() }))
    .sort((a, b) => compareKeys(a.key, b.key));
  for (const child of children) {
    if (child.isDir) {
      const mayMatch = child.key.startsWith(scan.prefix) || scan.prefix.startsWith(child.key);
      // Every key inside sorts after child.key; all of them are at or below `after` when it sorts after the folder without lying in it.
      const allListed = compareKeys(child.key, scan.after) < 0 && !scan.after.startsWith(child.key);
      if (mayMatch && !allListed) yield* walk(scan, child.key);
    } else if (child.key.startsWith(scan.prefix) && compareKeys(child.key, scan.after) > 0) {
      const uri = formatObjectUri({ bucket: scan.bucket, key: child.key });
      try {
        const stats = await stat(join(scan.bucketDir, ...child.key.split('/')));
        yield { uri, key: child.key, size: stats.size };
      } catch (err) {
        if (code(err) !== 'ENOENT') throw fsError(err, uri); // Deleted since readdir: skip it.
      }
    }
  }
}

/** Creates the temp file of a put, and its folder. */
async function openTemp(temp: string, uri: string): Promise<FileHandle> {
  for (let attempt = 1; ; attempt++) {
    try {
      await mkdir(dirname(temp), { recursive: true });
      return await open(temp, 'wx');
    } catch (err) {
      // A file where a folder of the key should be.
      if (code(err) === 'ENOTDIR' || code(err) === 'EEXIST') throw conflict(uri);
      // A delete pruned the new folder before the temp file was in it.
      if (code(err) === 'ENOENT' && attempt < PUT_FOLDER_ATTEMPTS) continue;
      throw fsError(err, uri);
    }
  }
}

/** Keys the local store refuses besides what no store takes (checkObjectKey): its own temp files' names. */
function checkKey(key: string, uri: string, isPrefix: boolean): void {
  checkObjectKey(key, uri, isPrefix);
  if (key.split('/').some((s) => s.startsWith(TEMP_PREFIX))) {
    const problem = `a key segment starts with the reserved "${TEMP_PREFIX}"`;
    throw new VisionqError(ErrorCode.InvalidArgument, `bad object key in ${JSON.stringify(uri)}: ${problem}`, [{ field: 'uri', message: problem }]);
  }
}

/** Removes the folders of `path` that are left empty, up to its bucket's folder. */
async function pruneEmptyFolders(bucketDir: string, path: string): Promise<void> {
  for (let dir = dirname(path); dir !== bucketDir; dir = dirname(dir)) {
    try {
      await rmdir(dir);
    } catch {
      return; // Not empty (so neither are those above), gone, or not ours to remove: nothing more to prune.
    }
  }
}

/** Byte order of UTF-8 keys, as S3 lists them (JS string order differs above U+FFFF). */
function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function conflict(uri: string): VisionqError {
  return new VisionqError(ErrorCode.Conflict, `cannot write ${uri}: a key of it is both a folder and an object`);
}

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

/** The store error for a failed file system call; others pass unchanged. */
function fsError(err: unknown, uri: string): unknown {
  switch (code(err)) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new ObjectNotFoundError(uri);
    case 'EACCES':
    case 'EPERM':
      return new ObjectAccessDeniedError(uri);
    case 'EMFILE':
    case 'ENFILE':
    case 'EAGAIN':
    case 'EBUSY':
      return new StoreUnavailableError(`local object store busy (${code(err)}) for ${uri}`, { cause: err });
    default:
      return err;
  }
}
