import { expect } from 'chai';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Cluster } from '../support/cluster';
import { ANKLE_BOOT_PNG } from '../support/model-fixtures';
import { httpRequest, multipart, rawRequest } from '../support/raw-http';

/** Cases per property, and the most time each may take: the suite stops by itself. */
const RUNS = 300;
const TIME_LIMIT_MS = 40_000;
/** Small, so generated files pass it as often as they stay under it. */
const MAX_IMAGE_BYTES = 4_000;

describe('fuzz: generated requests against a real gateway and worker (whole processes)', function () {
  this.timeout(240_000);
  const bucket = `vq-fuzz-${randomBytes(4).toString('hex')}`;
  let cluster: Cluster;
  let port: number;
  let png: Buffer;
  /** Tasks the gateway accepted: their uploads are theirs to keep. */
  const accepted = new Set<string>();
  let cases = 0;
  let baselineFds: number;

  before(async () => {
    png = await readFile(ANKLE_BOOT_PNG);
    cluster = await Cluster.start({ bucket, workers: 1, env: { MAX_TASK_IMAGES: '20', PREDICT_TIMEOUT_MS: '30000', MAX_IMAGE_BYTES: String(MAX_IMAGE_BYTES) } });
    port = Number(new URL(cluster.url).port);
    // One of each kind first, so the connections kept for good (Redis, the predict listener) exist from here on.
    await cluster.request('GET', '/readyz');
    const form = new FormData();
    form.append('file', new Blob([png]), 'boot.png');
    const warm = await cluster.request('POST', '/predict', form);
    expect(warm.status).to.equal(200);
    accepted.add(warm.body.task_id);
    baselineFds = cluster.gatewayFds();
  });

  after(async () => {
    await cluster?.stop();
  });

  /** Sends one generated request; whatever it is, the answer is a 2xx, or a 4xx with DESIGN.md's error body. */
  async function send(request: Buffer): Promise<void> {
    cases++;
    const reply = await rawRequest(port, request);
    const headOnly = request.subarray(0, 5).toString() === 'HEAD ';
    expect(cluster.gateway.child.exitCode, 'gateway alive').to.equal(null);
    expect(reply.status, `${reply.status} ${reply.body.slice(0, 300)} for ${request.subarray(0, 300).toString('latin1')}`).to.be.within(200, 499);
    let body: any;
    if (/json/.test(reply.headers['content-type'] ?? '') && !headOnly) body = JSON.parse(reply.body);
    if (reply.status >= 400 && !headOnly) {
      expect(body?.error?.code, reply.body).to.be.a('string').and.match(/^[a-z_]+$/);
      expect(body.error.message).to.be.a('string');
      expect(body.error.details).to.be.an('array');
    }
    if (typeof body?.task_id === 'string') accepted.add(body.task_id);
  }

  const image = () => `s3://${bucket}/in/boot.png`;
  /** Keys of every shape a hostile client tries: climbing out, empty segments, control characters, unicode. */
  const key = fc
    .array(fc.oneof(fc.constantFrom('..', '.', '', 'in', 'boot.png', '%2e%2e', 'uploads', 'results', '\u0000', 'a\\b', '\u00e9\u4e2d'), fc.string({ maxLength: 8 })), { maxLength: 5 })
    .map((segments) => segments.join('/'));
  const uri = fc.oneof(
    fc.constant(image()),
    key.map((k) => `s3://${bucket}/${k}`),
    fc.tuple(fc.constantFrom(bucket, 'other-bucket', 'UPPER', 'a', ''), key).map(([b, k]) => `s3://${b}/${k}`),
    fc.string({ maxLength: 40 }),
  );
  const option = fc.record(
    {
      model: fc.oneof(fc.constant('fashion-vgg'), fc.string({ maxLength: 10 }), fc.integer()),
      top_k: fc.oneof(fc.integer({ min: -2, max: 12 }), fc.constant('5'), fc.double(), fc.boolean(), fc.constant(null)),
      output: fc.oneof(uri.map((u) => (u.endsWith('/') ? u : `${u}/`)), fc.jsonValue()),
      priority: fc.oneof(fc.constantFrom('high', 'normal', 'low'), fc.string({ maxLength: 6 })),
      metadata: fc.oneof(fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 3 })), fc.jsonValue()),
      callback_url: fc.string({ maxLength: 10 }),
    },
    { requiredKeys: [] },
  );
  /** Options a well-meaning client sends: these make tasks, so the accepting paths are fuzzed too. */
  const goodOption = fc.record(
    { model: fc.constant('fashion-vgg'), top_k: fc.integer({ min: 1, max: 10 }), priority: fc.constantFrom('high', 'normal', 'low'), metadata: fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 2 })) },
    { requiredKeys: [] },
  );
  const jsonBody = fc.oneof(
    { arbitrary: fc.tuple(fc.array(fc.constant(image()), { minLength: 1, maxLength: 5 }), goodOption).map(([images, o]) => ({ images, ...o })), weight: 2 },
    { arbitrary: fc.tuple(fc.constant(image()), goodOption).map(([img, o]) => ({ image: img, ...o })), weight: 2 },
    fc.jsonValue({ maxDepth: 4 }),
    fc.tuple(fc.array(uri, { maxLength: 25 }), option).map(([images, o]) => ({ images, ...o })),
    fc.tuple(uri, option).map(([source, o]) => ({ source, ...o })),
    fc.tuple(uri, option).map(([img, o]) => ({ image: img, ...o })),
  );
  const contentType = fc.constantFrom('application/json', 'application/json', 'application/json; charset=utf-8', 'application/json; charset=latin1', 'text/plain', 'application/x-www-form-urlencoded', '', 'application/json; charset=utf-16');

  it('answers generated JSON bodies and headers with a 2xx or a documented 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/predict', '/batch_predict'),
        jsonBody,
        contentType,
        fc.option(fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'x'), { nil: undefined }),
        fc.option(fc.string({ minLength: 1, maxLength: 20 }).filter((s) => /^[\x21-\x7e]+$/.test(s)), { nil: undefined }),
        async (path, body, type, encoding, idempotencyKey) => {
          const headers: Record<string, string> = {};
          if (type) headers['content-type'] = type;
          if (encoding) headers['content-encoding'] = encoding;
          if (idempotencyKey && path === '/batch_predict') headers['idempotency-key'] = idempotencyKey;
          await send(httpRequest('POST', path, headers, JSON.stringify(body)));
        },
      ),
      { numRuns: RUNS, interruptAfterTimeLimit: TIME_LIMIT_MS },
    );
  });

  it('answers generated multipart framings (cut, misnamed, oversized, garbage) with a 2xx or a documented 4xx', async () => {
    const part = fc.tuple(
      fc.oneof(fc.constantFrom('file', 'files', 'model', 'top_k', 'metadata', 'priority', 'output'), fc.string({ maxLength: 12 }).filter((s) => !/["\r\n]/.test(s))),
      fc.oneof(fc.constant(png), fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)), fc.uint8Array({ minLength: MAX_IMAGE_BYTES - 10, maxLength: 2 * MAX_IMAGE_BYTES }).map((a) => Buffer.from(a)), fc.constantFrom('fashion-vgg', '3', 'x', '{"a":1}', '{')),
      fc.option(fc.oneof(fc.constantFrom('a.png', '../../x.png', '.vq-put-1', ''), fc.string({ maxLength: 10 }).filter((s) => !/["\r\n]/.test(s))), { nil: undefined }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/predict', '/batch_predict'),
        fc.string({ minLength: 1, maxLength: 20 }).filter((s) => /^[A-Za-z0-9'()+_,./:=?-]+$/.test(s) && !s.endsWith(' ')),
        fc.oneof(
          { arbitrary: fc.tuple(fc.constantFrom('file', 'files'), fc.array(fc.constantFrom<[string, string]>(['top_k', '2'], ['model', 'fashion-vgg']), { maxLength: 2 })).map(([name, fields]): Array<[string, string | Buffer, string?]> => [[name, png, 'boot.png'], ...fields]), weight: 2 },
          fc.array(part, { maxLength: 6 }),
        ),
        fc.oneof({ arbitrary: fc.constant(false), weight: 2 }, fc.constant(true)),
        fc.option(fc.uint8Array({ minLength: 1, maxLength: 50 }).map((a) => Buffer.from(a)), { nil: undefined, freq: 3 }),
        async (path, boundary, parts, cut, garbage) => {
          let body = multipart(boundary, parts, cut);
          if (garbage) body = Buffer.concat([body.subarray(0, Math.floor(body.length / 2)), garbage, body.subarray(Math.floor(body.length / 2))]);
          await send(httpRequest('POST', path, { 'content-type': `multipart/form-data; boundary=${boundary}` }, body));
        },
      ),
      { numRuns: RUNS, interruptAfterTimeLimit: TIME_LIMIT_MS },
    );
  });

  it('answers generated task routes, queries and framing with a 2xx or a documented 4xx', async () => {
    const id = fc.oneof(fc.uuid(), fc.string({ maxLength: 40 }).map(encodeURIComponent), fc.constantFrom('..', '%2e%2e', 'x'.repeat(300)));
    const query = fc.oneof(
      fc.constant(''),
      fc.record({ limit: fc.oneof(fc.integer({ min: -5, max: 5000 }).map(String), fc.string({ maxLength: 5 })), cursor: fc.string({ maxLength: 20 }), format: fc.constantFrom('json', 'ndjson', 'xml') }, { requiredKeys: [] }).map(
        (q) => `?${new URLSearchParams(q as Record<string, string>).toString()}`,
      ),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'DELETE', 'POST', 'PUT', 'PATCH', 'OPTIONS', 'HEAD'),
        fc.oneof(
          fc.tuple(id, query).map(([i, q]) => `/tasks/${i}${q}`),
          fc.tuple(id, query).map(([i, q]) => `/tasks/${i}/results${q}`),
          fc.constantFrom('/models', '/readyz', '/healthz', '/', '/predict', '/batch_predict', '//tasks', '/tasks/'),
        ),
        fc.constantFrom('application/json', 'application/x-ndjson', '*/*', 'text/html'),
        fc.option(fc.constantFrom('chunked', 'gzip, chunked'), { nil: undefined }),
        async (method, path, accept, transferEncoding) => {
          const headers: Record<string, string> = { accept };
          if (transferEncoding) headers['transfer-encoding'] = transferEncoding;
          const body = transferEncoding ? '0\r\n\r\n' : '';
          await send(httpRequest(method, path, headers, body));
        },
      ),
      { numRuns: RUNS, interruptAfterTimeLimit: TIME_LIMIT_MS },
    );
  });

  it('is still answering afterwards, holds no file for a refused request, no temp file and no extra descriptor', async () => {
    expect((await cluster.request('GET', '/healthz')).status).to.equal(200);
    expect((await cluster.request('GET', '/models')).status).to.equal(200);
    const uploads = join(cluster.dataDir, bucket, 'uploads');
    const strays = () => (existsSync(uploads) ? readdirSync(uploads).filter((folder) => !accepted.has(folder)) : []);
    for (let i = 0; i < 100 && strays().length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(strays(), 'upload folders of refused requests').to.deep.equal([]);
    const temps = existsSync(join(cluster.dataDir, bucket)) ? readdirSync(join(cluster.dataDir, bucket), { recursive: true }).filter((f) => String(f).includes('.vq-put-')) : [];
    expect(temps).to.deep.equal([]);
    // Wait for the state, not a time: every descriptor a request opened is closed again.
    for (let i = 0; i < 600 && cluster.gatewayFds() > baselineFds; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(cluster.gatewayFds(), 'open descriptors of the gateway').to.be.at.most(baselineFds);
    process.stderr.write(`      fuzz: ${cases} generated requests, ${accepted.size} accepted as tasks\n`);
    expect(cases).to.be.at.least(100);
  });
});
