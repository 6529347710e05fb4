import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ErrorCode, VisionqError } from '@visionq/api';
import { ObjectNotFoundError, ObjectTooLargeError, type ObjectInfo, type ObjectStore } from '@visionq/object-store';
import { rejection } from './promises';

/** The object at `uri` as the store lists it, or null when there is none (nor its bucket). */
export async function objectInfo(store: ObjectStore, uri: string): Promise<ObjectInfo | null> {
  try {
    const { objects } = await store.list(uri, { limit: 1 });
    return objects[0]?.uri === uri ? objects[0] : null;
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return null;
    throw err;
  }
}

/** A store and a bucket of one test's own, empty at the start. */
export interface ContractSubject {
  store: ObjectStore;
  bucket: string;
  /** A bucket name that no test creates or writes. */
  missingBucket: string;
  cleanup(): Promise<void>;
}

export async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** `bytes` as a stream of `chunkSize` pieces. */
export function streamOf(bytes: Buffer, chunkSize = 64 * 1024): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0; at < bytes.length; at += chunkSize) yield bytes.subarray(at, at + chunkSize);
    })(),
  );
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * What every ObjectStore must do, as mocha tests in the calling describe. `open` gives each
 * test a fresh subject; its cleanup runs after the test.
 */
export function objectStoreContract(open: () => Promise<ContractSubject>): void {
  let subject: ContractSubject;
  let store: ObjectStore;
  const uri = (key: string) => `s3://${subject.bucket}/${key}`;

  beforeEach(async () => {
    subject = await open();
    store = subject.store;
  });
  afterEach(async () => {
    await subject.cleanup();
  });

  it('puts a Buffer and a string and reads them back streamed, whole and headed', async () => {
    const bytes = randomBytes(1000);
    await store.put(uri('a/bytes.bin'), bytes);
    await store.put(uri('a/text.txt'), 'héllo');

    const got = await store.get(uri('a/bytes.bin'));
    expect(got.size).to.equal(1000);
    expect((await readAll(got.body)).equals(bytes)).to.equal(true);
    expect((await store.getBytes(uri('a/text.txt'), 100)).toString('utf8')).to.equal('héllo');
    expect(await objectInfo(store, uri('a/bytes.bin'))).to.deep.equal({ uri: uri('a/bytes.bin'), key: 'a/bytes.bin', size: 1000 });
    expect(await objectInfo(store, uri('a/text.txt'))).to.deep.include({ size: Buffer.byteLength('héllo') });
  });

  it('puts an empty object', async () => {
    await store.put(uri('empty'), Buffer.alloc(0));
    expect(await objectInfo(store, uri('empty'))).to.deep.include({ size: 0 });
    expect((await store.getBytes(uri('empty'), 0)).length).to.equal(0);
  });

  it('puts a 12 MiB stream and reads the same bytes back', async () => {
    const bytes = randomBytes(12 * 1024 * 1024);
    await store.put(uri('big/stream.bin'), streamOf(bytes));
    expect(await objectInfo(store, uri('big/stream.bin'))).to.deep.include({ size: bytes.length });
    const got = await store.get(uri('big/stream.bin'));
    expect(got.size).to.equal(bytes.length);
    expect(sha256(await readAll(got.body))).to.equal(sha256(bytes));
  });

  it('replaces an object whole', async () => {
    await store.put(uri('k'), 'first version');
    await store.put(uri('k'), 'second');
    expect((await store.getBytes(uri('k'), 100)).toString()).to.equal('second');
  });

  it('getBytes refuses an object over maxBytes and reads one of exactly maxBytes', async () => {
    await store.put(uri('ten'), Buffer.alloc(10, 7));
    const err = await rejection(store.getBytes(uri('ten'), 9));
    expect(err).to.be.instanceOf(ObjectTooLargeError);
    expect(err).to.include({ uri: uri('ten'), size: 10, limit: 9, code: ErrorCode.PayloadTooLarge });
    expect(await store.getBytes(uri('ten'), 10)).to.deep.equal(Buffer.alloc(10, 7));
  });

  it('finds no missing object, in an existing bucket or a missing one', async () => {
    await store.put(uri('present'), 'x');
    expect(await objectInfo(store, uri('absent'))).to.equal(null);
    for (const missing of [uri('absent'), uri('present/below'), `s3://${subject.missingBucket}/present`]) {
      const err = await rejection(store.get(missing));
      expect(err, missing).to.be.instanceOf(ObjectNotFoundError);
      expect(err).to.include({ uri: missing, code: ErrorCode.NotFound });
      expect(await rejection(store.getBytes(missing, 10)), missing).to.be.instanceOf(ObjectNotFoundError);
    }
    expect(await objectInfo(store, `s3://${subject.missingBucket}/present`)).to.equal(null);
  });

  it('refuses a URI without a key, and a list limit below 1', async () => {
    for (const attempt of [() => store.get(uri('')), () => store.getBytes(uri(''), 10), () => store.put(uri(''), 'x'), () => store.delete(uri('')), () => store.list(uri(''), { limit: 0 })]) {
      expect(await rejection(attempt())).to.be.instanceOf(VisionqError).with.property('code', ErrorCode.InvalidArgument);
    }
  });

  it('lists 25 objects in pages of 10, in key order, and nothing outside the prefix', async () => {
    const keys = Array.from({ length: 25 }, (_, i) => `set/item-${String(i).padStart(2, '0')}.txt`);
    await Promise.all(keys.map((key, i) => store.put(uri(key), 'x'.repeat(i))));
    await store.put(uri('other/item.txt'), 'x');
    await store.put(uri('set-sibling.txt'), 'x');

    const pages = [];
    let cursor: string | null = null;
    do {
      const page = await store.list(uri('set/'), { cursor, limit: 10 });
      pages.push(page.objects);
      cursor = page.nextCursor;
    } while (cursor !== null && pages.length < 10);
    expect(pages.map((p) => p.length)).to.deep.equal([10, 10, 5]);
    expect(pages.flat().map((o) => o.key)).to.deep.equal(keys);
    expect(pages.flat()[3]).to.deep.equal({ uri: uri(keys[3]!), key: keys[3], size: 3 });
  });

  it('lists by a prefix that ends mid-name, down into folders', async () => {
    for (const key of ['photos/cat.jpg', 'photos/car/1.jpg', 'photos/car/2.jpg', 'photos/dog.jpg', 'photos/c', 'photosx', 'cat.jpg']) {
      await store.put(uri(key), key);
    }
    const page = await store.list(uri('photos/ca'), { limit: 100 });
    expect(page.objects.map((o) => o.key)).to.deep.equal(['photos/car/1.jpg', 'photos/car/2.jpg', 'photos/cat.jpg']);
    expect(page.nextCursor).to.equal(null);
    const all = await store.list(uri(''), { limit: 100 });
    expect(all.objects).to.have.length(7);
    expect((await store.list(uri('photos'), { limit: 100 })).objects.map((o) => o.key)).to.include.members(['photosx', 'photos/c']);
  });

  it('lists in byte order of UTF-8 keys, page by page', async () => {
    // '-' < '.' < '/' < '0' in bytes; U+FF5E sorts before U+1F600 in UTF-8, after it in UTF-16.
    const inOrder = ['a-b', 'a.c', 'a/x', 'a/y/z', 'a0', 'ab', 'é', '\uFF5E', '\u{1F600}'];
    for (const key of [...inOrder].reverse()) await store.put(uri(key), key);
    const keys: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { objects: { key: string }[]; nextCursor: string | null } = await store.list(uri(''), { cursor, limit: 2 });
      keys.push(...page.objects.map((o) => o.key));
      cursor = page.nextCursor;
    } while (cursor !== null && keys.length < 100);
    expect(keys).to.deep.equal(inOrder);
  });

  it('lists nothing under an unused prefix', async () => {
    await store.put(uri('a/b'), 'x');
    expect(await store.list(uri('nothing/here'), { limit: 10 })).to.deep.equal({ objects: [], nextCursor: null });
  });

  it('deletes an object, and a missing one without complaint', async () => {
    await store.put(uri('doomed/one'), 'x');
    await store.delete(uri('doomed/one'));
    expect(await objectInfo(store, uri('doomed/one'))).to.equal(null);
    expect((await store.list(uri('doomed/'), { limit: 10 })).objects).to.deep.equal([]);
    await store.delete(uri('doomed/one'));
    await store.delete(uri('never/was'));
  });
}
