import { expect } from 'chai';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { ErrorCode, VisionqError } from '@visionq/api';
import { BucketPolicy, formatObjectUri, joinObjectUri, LocalObjectStore, ObjectNotFoundError, parseObjectUri } from '@visionq/object-store';
import { objectInfo, objectStoreContract, readAll } from '../support/object-store-contract';
import { rejection } from '../support/promises';

function expectCode(fn: () => unknown, code: ErrorCode): VisionqError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).to.be.instanceOf(VisionqError);
  expect((caught as VisionqError).code).to.equal(code);
  return caught as VisionqError;
}

describe('object URIs', () => {
  it('parses s3://bucket/key, with or without a key', () => {
    expect(parseObjectUri('s3://my-bucket/a/b.jpg')).to.deep.equal({ bucket: 'my-bucket', key: 'a/b.jpg' });
    expect(parseObjectUri('s3://my.bucket/')).to.deep.equal({ bucket: 'my.bucket', key: '' });
    expect(parseObjectUri('s3://bkt')).to.deep.equal({ bucket: 'bkt', key: '' });
    expect(parseObjectUri('s3://bkt/folder/')).to.deep.equal({ bucket: 'bkt', key: 'folder/' });
  });

  it('refuses what is not an object URI, naming the field', () => {
    for (const bad of ['', 'bkt/key', 'http://bkt/key', 's3://', 's3://Upper/key', 's3://ab/key', 's3:///key', 's3://-bkt/key']) {
      const err = expectCode(() => parseObjectUri(bad, 'inputs[0]'), ErrorCode.InvalidArgument);
      expect(err.details[0]?.field, bad).to.equal('inputs[0]');
    }
  });

  it('formats and joins', () => {
    expect(formatObjectUri({ bucket: 'bkt', key: 'a/b' })).to.equal('s3://bkt/a/b');
    expect(formatObjectUri(parseObjectUri('s3://bkt/x/y z'))).to.equal('s3://bkt/x/y z');
    expect(joinObjectUri('s3://bkt/prefix/', 'name')).to.equal('s3://bkt/prefix/name');
    expect(joinObjectUri('s3://bkt/prefix', 'name')).to.equal('s3://bkt/prefix/name');
  });
});

describe('BucketPolicy', () => {
  it('allows the listed buckets only', () => {
    const policy = new BucketPolicy(['inputs', 'results']);
    expect(policy.allows('s3://inputs/a.jpg')).to.equal(true);
    expect(policy.allows('s3://results/')).to.equal(true);
    expect(policy.allows('s3://secrets/a.jpg')).to.equal(false);
    policy.check('s3://inputs/a.jpg', 'images[0]');
  });

  it('allows every bucket for "*"', () => {
    expect(new BucketPolicy(['*']).allows('s3://anything/x')).to.equal(true);
    expect(new BucketPolicy([]).allows('s3://anything/x')).to.equal(false);
  });

  it('refuses a forbidden bucket as Forbidden, naming bucket and field', () => {
    const err = expectCode(() => new BucketPolicy(['inputs']).check('s3://secrets/a.jpg', 'images[2]'), ErrorCode.Forbidden);
    expect(err.message).to.contain('secrets');
    expect(err.details).to.have.length(1);
    expect(err.details[0]).to.include({ field: 'images[2]' });
    expect(err.details[0]!.message).to.contain('secrets');
  });

  it('refuses a malformed URI as parseObjectUri does', () => {
    const err = expectCode(() => new BucketPolicy(['*']).check('not-a-uri', 'output'), ErrorCode.InvalidArgument);
    expect(err.details[0]).to.include({ field: 'output' });
    expectCode(() => new BucketPolicy(['*']).allows('s3:/x'), ErrorCode.InvalidArgument);
  });
});

describe('LocalObjectStore', () => {
  /** A temp folder holding the store's root, so that escapes from the root can be seen. */
  let dir: string;
  let root: string;
  let store: LocalObjectStore;
  const BUCKET = 'vq-local';
  const uri = (key: string) => `s3://${BUCKET}/${key}`;

  async function openStore(): Promise<void> {
    dir = await mkdtemp(join(tmpdir(), 'visionq-store-'));
    root = join(dir, 'root');
    store = new LocalObjectStore(root);
  }

  async function filesIn(folder: string): Promise<string[]> {
    const entries = await readdir(folder, { recursive: true, withFileTypes: true });
    return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(folder.length + 1));
  }

  describe('the ObjectStore contract', () => {
    objectStoreContract(async () => {
      await openStore();
      return { store, bucket: BUCKET, missingBucket: 'vq-missing', cleanup: () => rm(dir, { recursive: true, force: true }) };
    });
  });

  describe('as files', () => {
    beforeEach(openStore);
    afterEach(() => rm(dir, { recursive: true, force: true }));

    it('keeps bucket b, key k in the file <root>/b/k', async () => {
      await store.put(uri('a/b.txt'), 'x');
      expect(await filesIn(dir)).to.deep.equal([join('root', BUCKET, 'a', 'b.txt')]);
    });

    it('refuses keys that would leave the bucket folder, and writes nothing', async () => {
      await store.put(`s3://${BUCKET}/inside`, 'x');
      const bad = ['..', '../x', 'a/../../x', '../../outside', '/abs', 'a//b', 'a/', '.', './a', 'a\\..\\..\\x', 'a\0b', 'x'.repeat(256), `${'x/'.repeat(600)}x`, '.vq-put-x', 'a/.vq-put-x/b'];
      for (const key of bad) {
        for (const attempt of [() => store.put(uri(key), 'x'), () => store.get(uri(key)), () => store.getBytes(uri(key), 10), () => store.delete(uri(key))]) {
          const err = await rejection(attempt());
          expect(err, JSON.stringify(key)).to.be.instanceOf(VisionqError).with.property('code', ErrorCode.InvalidArgument);
        }
      }
      for (const prefix of ['../', 'a/../', '/x', 'a//', 'a\\b']) {
        expect(await rejection(store.list(uri(prefix), { limit: 10 })), prefix).to.be.instanceOf(VisionqError).with.property('code', ErrorCode.InvalidArgument);
      }
      expect(await filesIn(dir)).to.deep.equal([join('root', BUCKET, 'inside')]);
    });

    it('keeps dots inside names and lists a prefix ending in a dot', async () => {
      await store.put(uri('a/..b/.c'), 'x');
      await store.put(uri('a/b..'), 'x');
      expect((await store.list(uri('a/.'), { limit: 10 })).objects.map((o) => o.key)).to.deep.equal(['a/..b/.c']);
    });

    it('gives an empty page for a bucket without a folder', async () => {
      expect(await store.list('s3://never-written/', { limit: 10 })).to.deep.equal({ objects: [], nextCursor: null });
      expect(await store.list('s3://never-written/some/prefix', { limit: 10 })).to.deep.equal({ objects: [], nextCursor: null });
    });

    it('hides a put in progress: no temp file is listed, readers see the old bytes', async () => {
      await store.put(uri('photos/cat.jpg'), 'old');
      const body = new PassThrough();
      const putting = store.put(uri('photos/cat.jpg'), body);
      const newBody = new PassThrough();
      const newcomer = store.put(uri('photos/new.jpg'), newBody);
      body.write('new bytes, part 1; ');
      newBody.write('new ');
      await until(async () => (await readdir(join(root, BUCKET, 'photos'))).length === 3);

      expect((await store.list(uri('photos/'), { limit: 10 })).objects.map((o) => o.key)).to.deep.equal(['photos/cat.jpg']);
      expect((await store.list(uri('photos/'), { cursor: 'photos/cat.jpg', limit: 10 })).objects).to.deep.equal([]);
      expect((await store.getBytes(uri('photos/cat.jpg'), 100)).toString()).to.equal('old');
      expect(await objectInfo(store, uri('photos/new.jpg'))).to.equal(null);

      body.end('part 2');
      newBody.end('file');
      await Promise.all([putting, newcomer]);
      expect((await store.getBytes(uri('photos/cat.jpg'), 100)).toString()).to.equal('new bytes, part 1; part 2');
      expect((await store.list(uri('photos/'), { limit: 10 })).objects.map((o) => o.key)).to.deep.equal(['photos/cat.jpg', 'photos/new.jpg']);
      expect(await readdir(join(root, BUCKET, 'photos'))).to.have.members(['cat.jpg', 'new.jpg']);
    });

    it('leaves no trace of a put whose body fails, and passes the body error on', async () => {
      await store.put(uri('kept'), 'old');
      const failure = new Error('client went away');
      const body = new Readable({ read() {} });
      const putting = store.put(uri('kept'), body);
      body.push('partial');
      setImmediate(() => body.destroy(failure));
      expect(await rejection(putting)).to.equal(failure);
      expect((await store.getBytes(uri('kept'), 10)).toString()).to.equal('old');
      expect(await filesIn(root)).to.deep.equal([join(BUCKET, 'kept')]);
    });

    it('does not list the temp file of a put that crashed', async () => {
      await mkdir(join(root, BUCKET, 'a'), { recursive: true });
      await writeFile(join(root, BUCKET, 'a', '.vq-put-0000'), 'half');
      await store.put(uri('a/b'), 'x');
      expect((await store.list(uri(''), { limit: 10 })).objects.map((o) => o.key)).to.deep.equal(['a/b']);
    });

    it('refuses an object where a folder is, and the other way round', async () => {
      await store.put(uri('a/b'), 'x');
      for (const key of ['a', 'a/b/c']) {
        expect(await rejection(store.put(uri(key), 'x')), key).to.be.instanceOf(VisionqError).with.property('code', ErrorCode.Conflict);
      }
      expect(await objectInfo(store, uri('a'))).to.equal(null);
      expect(await rejection(store.get(uri('a')))).to.be.instanceOf(ObjectNotFoundError);
      await store.delete(uri('a'));
      expect(await filesIn(root)).to.deep.equal([join(BUCKET, 'a', 'b')]);
    });

    it('removes the folders a delete leaves empty, up to the bucket folder', async () => {
      await store.put(uri('x/y/z/one'), '1');
      await store.put(uri('x/two'), '2');
      await store.delete(uri('x/y/z/one'));
      expect(await readdir(join(root, BUCKET, 'x'))).to.deep.equal(['two']);
      await store.delete(uri('x/two'));
      expect(await readdir(join(root, BUCKET))).to.deep.equal([]);
      await store.put(uri('x'), 'now a file');
      expect((await store.getBytes(uri('x'), 100)).toString()).to.equal('now a file');
    });

    it('streams from get what was there when it opened', async () => {
      await store.put(uri('v'), 'version one');
      const { body, size } = await store.get(uri('v'));
      await store.put(uri('v'), 'version two, longer');
      expect(size).to.equal('version one'.length);
      expect((await readAll(body)).toString()).to.equal('version one');
    });
  });
});

/** Polls `condition` until it holds; fails after 5 s. */
async function until(condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
