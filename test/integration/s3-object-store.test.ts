import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { expect } from 'chai';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { ErrorCode } from '@visionq/api';
import { ObjectAccessDeniedError, ObjectNotFoundError, S3ObjectStore, StoreUnavailableError } from '@visionq/object-store';
import { createBucket, freePort, motoClient, motoStore, startMotoServer, type MotoServer } from '../support/moto-server';
import { objectInfo, objectStoreContract, readAll, sha256, streamOf } from '../support/object-store-contract';
import { rejection } from '../support/promises';

const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };

/** A bucket name of this test's own. */
function bucketName(): string {
  return `vq-${randomUUID()}`;
}

describe('S3ObjectStore (moto)', function () {
  let server: MotoServer;
  before(async function () {
    this.timeout(40_000);
    server = await startMotoServer();
  });
  after(async () => {
    await server?.stop();
  });

  describe('the ObjectStore contract', () => {
    objectStoreContract(async () => {
      const bucket = bucketName();
      await createBucket(server, bucket);
      const store = motoStore(server);
      // Buckets go with the server, stopped after the suite.
      return { store, bucket, missingBucket: bucketName(), cleanup: async () => store.close() };
    });
  });

  describe('on S3', () => {
    let store: S3ObjectStore;
    let bucket: string;
    beforeEach(async () => {
      bucket = bucketName();
      await createBucket(server, bucket);
      store = motoStore(server);
    });
    afterEach(() => store.close());

    it('sends a 12 MiB stream in parts and a small Buffer whole', async () => {
      const bytes = randomBytes(12 * 1024 * 1024);
      await store.put(`s3://${bucket}/big.bin`, streamOf(bytes));
      await store.put(`s3://${bucket}/small.bin`, bytes.subarray(0, 1000));
      const client = motoClient(server);
      try {
        // A multipart object's ETag ends in -<parts>: 8 MiB + 4 MiB.
        const big = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'big.bin' }));
        expect(big.ETag).to.match(/-2"$/);
        const small = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'small.bin' }));
        expect(small.ETag).to.match(/^"[0-9a-f]{32}"$/);
      } finally {
        client.destroy();
      }
      expect(sha256(await store.getBytes(`s3://${bucket}/big.bin`, bytes.length))).to.equal(sha256(bytes));
    });

    it('keeps the content type', async () => {
      await store.put(`s3://${bucket}/cat.jpg`, Buffer.from([0xff, 0xd8, 0xff]), { contentType: 'image/jpeg' });
      const got = await store.get(`s3://${bucket}/cat.jpg`);
      expect(got).to.include({ size: 3, contentType: 'image/jpeg' });
      await readAll(got.body);
    });

    it('finds no bucket that does not exist, for list and delete too', async () => {
      const missing = `s3://${bucketName()}/`;
      expect(await rejection(store.list(missing, { limit: 10 }))).to.be.instanceOf(ObjectNotFoundError);
      expect(await rejection(store.delete(`${missing}key`))).to.be.instanceOf(ObjectNotFoundError);
      expect(await rejection(store.put(`${missing}key`, 'x'))).to.be.instanceOf(ObjectNotFoundError);
    });

    it('passes the error of a failing body on as it is', async () => {
      const failure = new Error('client went away');
      const body = streamOf(randomBytes(1024));
      const putting = store.put(`s3://${bucket}/failed`, body);
      body.destroy(failure);
      expect(await rejection(putting)).to.equal(failure);
      expect(await objectInfo(store, `s3://${bucket}/failed`)).to.equal(null);
    });

    it('is unavailable after close, which may be called twice', async () => {
      store.close();
      store.close();
      const err = await rejection(store.getBytes(`s3://${bucket}/x`, 10));
      expect(err).to.be.instanceOf(StoreUnavailableError).with.property('code', ErrorCode.Unavailable);
    });
  });
});

describe('S3ObjectStore (unreachable or failing endpoints)', () => {
  it('reports an endpoint with nothing listening as StoreUnavailableError, after its bounded attempts', async () => {
    const store = new S3ObjectStore({ endpoint: `http://127.0.0.1:${await freePort()}`, region: 'us-east-1', forcePathStyle: true, credentials: CREDENTIALS });
    try {
      for (const attempt of [() => store.getBytes('s3://vq-bucket/x', 10), () => store.get('s3://vq-bucket/x'), () => store.put('s3://vq-bucket/x', 'x')]) {
        const err = await rejection(attempt());
        expect(err).to.be.instanceOf(StoreUnavailableError);
        expect(err.cause).to.have.property('code', 'ECONNREFUSED');
        // Bounded by count, not by this machine's speed: the SDK gave up after its 3 tries.
        expect(err.cause).to.have.nested.property('$metadata.attempts', 3);
      }
    } finally {
      store.close();
    }
  });

  describe('a scripted endpoint', () => {
    let server: Server;
    let store: S3ObjectStore;
    /** What the endpoint answers to every request. */
    let answer: (res: ServerResponse) => void;
    let requests: number;

    before(async () => {
      const port = await freePort();
      server = createServer((req, res) => {
        requests++;
        req.resume();
        answer(res);
      });
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
      store = new S3ObjectStore({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', forcePathStyle: true, credentials: CREDENTIALS });
    });
    beforeEach(() => {
      requests = 0;
    });
    after(async () => {
      store.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });

    const s3Error = (status: number, code: string) => (res: ServerResponse) => {
      res.writeHead(status, { 'content-type': 'application/xml' });
      res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>scripted</Message><RequestId>1</RequestId></Error>`);
    };

    it('retries throttling and 5xx, then reports StoreUnavailableError with the cause', async () => {
      for (const [status, code] of [[503, 'SlowDown'], [500, 'InternalError']] as const) {
        answer = s3Error(status, code);
        requests = 0;
        const err = await rejection(store.getBytes('s3://vq-bucket/x', 100));
        expect(err, code).to.be.instanceOf(StoreUnavailableError);
        expect(err.cause).to.have.property('name', code);
        expect(requests, code).to.equal(3);
      }
    });

    it('reports AccessDenied as ObjectAccessDeniedError, without retrying', async () => {
      answer = s3Error(403, 'AccessDenied');
      const err = await rejection(store.get('s3://vq-bucket/secret'));
      expect(err).to.be.instanceOf(ObjectAccessDeniedError);
      expect(err).to.include({ uri: 's3://vq-bucket/secret', code: ErrorCode.Forbidden });
      expect(requests).to.equal(1);
      expect(await rejection(store.list('s3://vq-bucket/secret/', { limit: 1 }))).to.be.instanceOf(ObjectAccessDeniedError);
    });

    it('passes other S3 errors on as they are', async () => {
      answer = s3Error(400, 'InvalidRequest');
      const err = await rejection(store.list('s3://vq-bucket/', { limit: 10 }));
      expect(err).to.have.property('name', 'InvalidRequest');
      expect(err).not.to.be.instanceOf(StoreUnavailableError);
    });

    it('reports a connection lost mid-body as StoreUnavailableError', async () => {
      answer = (res) => {
        res.writeHead(200, { 'content-length': '1000', 'content-type': 'application/octet-stream' });
        res.write(Buffer.alloc(100));
        setTimeout(() => res.socket?.destroy(), 50);
      };
      const { body, size } = await store.get('s3://vq-bucket/cut');
      expect(size).to.equal(1000);
      expect(await rejection(readAll(body))).to.be.instanceOf(StoreUnavailableError);
      expect(await rejection(store.getBytes('s3://vq-bucket/cut', 1000))).to.be.instanceOf(StoreUnavailableError);
    });

    it('refuses by Content-Length before reading the body', async () => {
      answer = (res) => {
        res.writeHead(200, { 'content-length': String(10 * 1024 * 1024) });
        res.write(Buffer.alloc(1024)); // and never the rest
      };
      const err = await rejection(store.getBytes('s3://vq-bucket/huge', 1024));
      expect(err).to.include({ size: 10 * 1024 * 1024, limit: 1024, code: ErrorCode.PayloadTooLarge });
    });
  });
});
