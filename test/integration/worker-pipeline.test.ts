import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { isTerminal, modelLabels } from '@visionq/api';
import { loadConfig } from '@visionq/config';
import { ConcurrencyGate, ImagePipeline, openClassifier, type Classifier } from '@visionq/inference';
import { LocalObjectStore, StoreUnavailableError, type ObjectStore } from '@visionq/object-store';
import { createLogger, MetricsRegistry, serveMetrics, WorkerMetrics } from '@visionq/observability';
import { ChunkProcessor, connectRedis, openTasks, ResultStore, type ChunkJobData, type TaskRecord, type Tasks, type TaskSpec } from '@visionq/tasks';
import { BUNDLED_MODELS_DIR, FASHION_DIR } from '../support/model-fixtures';
import { rejection } from '../support/promises';
import { deleteKeys } from '../support/redis-keys';

const MODEL = 'fashion-vgg@1';
const OUTPUT = 's3://visionq/results/';

describe('worker pieces in one process (real Redis, local store, real onnxruntime)', function () {
  this.timeout(60_000);
  const prefix = `vq-worker-${randomUUID().slice(0, 8)}`;
  const logger = createLogger({ silent: true });
  const metrics = new WorkerMetrics(new MetricsRegistry());
  let redis: Redis;
  let dataDir: string;
  let store: LocalObjectStore;
  let engine: Classifier;
  let tasks: Tasks;
  let pipeline: ImagePipeline;
  let processor: ChunkProcessor;
  let png: Buffer;

  /** The embedded defaults, as a worker would load them, but for this test's store, keys and sizes. */
  const config = loadConfig({
    REDIS_PREFIX: prefix,
    MODELS_DIR: BUNDLED_MODELS_DIR,
    MAX_BATCH_SIZE: '8',
    MAX_QUEUE_DELAY_MS: '2',
    WARMUP: 'false',
    MAX_IMAGE_BYTES: '100000',
    MAX_IMAGE_PIXELS: String(1 << 24),
    TASK_RETENTION_S: '600',
    CHUNK_ATTEMPTS: '3',
    CHUNK_SIZE: '5',
    LIST_PAGE_SIZE: '10',
  });
  const spec = (): TaskSpec => ({ id: randomUUID(), tenant: 'default', kind: 'batch', model: MODEL, topK: 3, output: OUTPUT, priority: 5 });
  const chunkOf = (task: TaskSpec, images: string[], index = 0): ChunkJobData => ({ taskId: task.id, index, images, model: MODEL, topK: 3, output: OUTPUT });
  const pipelineOver = (source: ObjectStore) =>
    new ImagePipeline(source, engine.classifier, new ConcurrencyGate(4), config.imaging.maxImageBytes, {
      fetched: (ref, seconds) => metrics.fetchSeconds.observe(modelLabels(ref), seconds),
      decoded: (ref, seconds) => metrics.decodeSeconds.observe(modelLabels(ref), seconds),
      failed: (ref, code) => metrics.imageErrors.inc({ ...modelLabels(ref), code }),
    });

  before(async () => {
    redis = (await connectRedis('redis://127.0.0.1:6379', { failFast: false, onError: () => undefined })) as Redis;
    dataDir = await mkdtemp(join(tmpdir(), 'vq-worker-'));
    store = new LocalObjectStore(dataDir);
    engine = await openClassifier(config, { logger, only: [MODEL] });
    tasks = openTasks(redis, config, { store, logger, onError: () => undefined });
    pipeline = pipelineOver(store);
    processor = new ChunkProcessor(tasks.store, tasks.results, pipeline, logger, metrics);
    png = await readFile(join(FASHION_DIR, '0000-ankle_boot.png'));
    for (let i = 0; i < 40; i++) await store.put(`s3://visionq/in/${String(i).padStart(2, '0')}.png`, png);
  });

  after(async () => {
    await tasks.close();
    await engine.close();
    await deleteKeys(redis, `${prefix}:*`);
    await redis.quit();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('turns every kind of unusable object into that image\'s error line', async () => {
    await store.put('s3://visionq/big.png', Buffer.concat([png, Buffer.alloc(100_000)]));
    const lines = await Promise.all(
      ['s3://visionq/in/00.png', 's3://visionq/nothing.png', 's3://visionq/big.png', 's3://visionq/a//b.png', 's3://visionq/../escape.png'].map((uri) =>
        pipeline.classify(uri, MODEL, 2, { urgent: false }),
      ),
    );
    expect(lines[0]).to.have.property('predictions').with.length(2);
    expect(lines.slice(1).map((l) => ('error' in l ? l.error.code : 'none'))).to.deep.equal(['image_not_found', 'image_too_large', 'invalid_argument', 'invalid_argument']);
  });

  it('counts a chunk run twice once, and skips it the second time', async () => {
    const task = spec();
    await tasks.store.create(task, { images: 3, chunks: 1 });
    const chunk = chunkOf(task, ['s3://visionq/in/00.png', 's3://visionq/in/01.png', 's3://visionq/nothing.png']);
    expect(await processor.process(chunk, { urgent: false })).to.include({ status: 'done', succeeded: 2, failed: 1 });
    expect(await processor.process(chunk, { urgent: false })).to.include({ status: 'skipped' });
    expect(await tasks.store.get(task.id)).to.include({ status: 'completed_with_errors', done: 3, succeeded: 2, failed: 1 });
    const images = (await metrics.images.get()).values;
    expect(images.find((v) => v.labels.outcome === 'failed')?.value).to.be.at.least(1);
    const part = (await store.getBytes(ResultStore.partUri(task, 0), 1 << 20)).toString().trim().split('\n');
    expect(part.map((l) => JSON.parse(l).image)).to.deep.equal(chunk.images);
  });

  it('drops a chunk whose task is cancelled while it runs, counting nothing', async () => {
    // Polls often, so the cancel lands while most of the 40 images still wait for the gate.
    const processor = new ChunkProcessor(tasks.store, tasks.results, pipeline, logger, metrics, 5);
    const task = spec();
    const images = Array.from({ length: 40 }, (_, i) => `s3://visionq/in/${String(i).padStart(2, '0')}.png`);
    await tasks.store.create(task, { images: 40, chunks: 1 });
    const running = processor.process(chunkOf(task, images), { urgent: false });
    await tasks.store.cancel(task.id);
    expect(await running).to.include({ status: 'skipped' });
    expect(await tasks.store.get(task.id)).to.include({ status: 'cancelled', done: 0 });
    expect(await tasks.store.committedChunks(task.id)).to.deep.equal([]);
  });

  it('serves its metrics for Prometheus on the worker\'s port', async () => {
    const server = await serveMetrics(metrics.registry, 0);
    try {
      const { port } = server.address() as { port: number };
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.status).to.equal(200);
      const text = await res.text();
      expect(text).to.match(/^visionq_images_total\{model="fashion-vgg",version="1",outcome="succeeded"\} [1-9]\d*$/m);
      expect(text).to.match(/^visionq_chunks_total\{outcome="done"\} [1-9]\d*$/m);
      expect(text).to.match(/^visionq_fetch_duration_seconds_count\{model="fashion-vgg",version="1"\} [1-9]\d*$/m);
      expect(text).to.match(/^visionq_decode_duration_seconds_count\{model="fashion-vgg",version="1"\} [1-9]\d*$/m);
      // The error lines of the unusable objects above, by code.
      expect(text).to.match(/^visionq_image_errors_total\{model="fashion-vgg",version="1",code="image_not_found"\} [1-9]\d*$/m);
      expect(text).to.match(/^visionq_image_errors_total\{model="fashion-vgg",version="1",code="invalid_argument"\} [1-9]\d*$/m);
      expect((await fetch(`http://127.0.0.1:${port}/other`)).status).to.equal(404);
    } finally {
      server.close();
    }
  });

  /** The real local store, whose reads fail as an unreachable store's would while `failing()` says so. */
  function flaky(failing: (uri: string) => boolean): ObjectStore {
    return Object.assign(Object.create(store) as ObjectStore, {
      getBytes: (uri: string, maxBytes: number) =>
        failing(uri) ? Promise.reject(new StoreUnavailableError(`injected outage reading ${uri}`)) : store.getBytes(uri, maxBytes),
    });
  }

  /** A worker's BullMQ side over `source` (the real store unless a test injects faults) runs one task to its end. */
  async function runTask(source: ObjectStore, submit: () => Promise<string>): Promise<TaskRecord> {
    const worker = openTasks(redis, config, { store: source, logger, onError: () => undefined });
    const consumer = worker.consumer(pipelineOver(source), { ...config.worker, chunkConcurrency: 2, fetchConcurrency: 2, drainTimeoutMs: 5_000, models: [MODEL] }, logger, metrics);
    consumer.start();
    try {
      const id = await submit();
      for (let i = 0; i < 300; i++) {
        const task = await tasks.store.get(id);
        if (task && isTerminal(task.status)) return task;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error(`task ${id} did not end`);
    } finally {
      await consumer.close();
      await worker.close();
    }
  }

  const submitImages = async (count: number): Promise<string> => {
    const task = spec();
    const images = Array.from({ length: count }, (_, i) => `s3://visionq/in/${String(i).padStart(2, '0')}.png`);
    await tasks.submitter.submit(task, { images });
    return task.id;
  };

  it('retries a chunk whose store is briefly unreachable, and counts its images once', async () => {
    let reads = 0;
    const task = await runTask(flaky(() => ++reads <= 3), () => submitImages(10));
    expect(task).to.include({ status: 'succeeded', total: 10, done: 10, succeeded: 10, failed: 0 });
    expect(reads).to.be.at.least(13); // the three failed reads, then every image once more
  });

  it('keeps a chunk that used up its attempts on its task, finishes the others, and a retry runs only it, each image once', async () => {
    // Chunk 1 (images 05..09) cannot be read while the outage lasts; chunks 0 and 2 can.
    let outage = true;
    const source = flaky((uri) => outage && /in\/0[5-9]\.png$/.test(uri));
    const failed = await runTask(source, () => submitImages(15));
    expect(failed).to.include({ status: 'failed', total: 15, done: 10, succeeded: 10, failed: 0, retries: 0 });
    expect(failed.error).to.deep.include({ code: 'unavailable' });
    expect(failed.error!.message).to.match(/^1 of 3 chunks failed after 3 attempts \(injected outage .*\); POST \/tasks\/.*\/retry runs them again$/);
    expect(failed.failedChunks).to.have.length(1);
    expect(failed.failedChunks![0]).to.deep.include({ index: 1, images: 5, attempts: 3 });
    expect(failed.failedChunks![0]!.error.code).to.equal('unavailable');
    expect((await tasks.results.page(failed, null, 100)).results).to.have.length(10);

    outage = false;
    const retried = await runTask(source, async () => {
      expect(await tasks.submitter.retry(failed, { failedImages: false })).to.equal(1);
      return failed.id;
    });
    expect(retried).to.include({ status: 'succeeded', total: 15, done: 15, succeeded: 15, failed: 0, retries: 1 });
    expect(retried.failedChunks).to.equal(undefined);
    expect(retried.error).to.equal(undefined);
    const images = (await tasks.results.page(retried, null, 100)).results.map((r) => r.image);
    expect(images).to.deep.equal(Array.from({ length: 15 }, (_, i) => `s3://visionq/in/${String(i).padStart(2, '0')}.png`));
    const events = await tasks.events.replay(failed.id);
    expect(events.map((e) => e.type)).to.deep.equal(['created', 'running', 'progress', 'progress', 'progress', 'ended', 'retried', 'progress', 'ended']);
    expect(events.find((e) => e.type === 'progress' && e.failed_chunk !== undefined)).to.include({ failed_chunk: 1 });
    expect((await rejection(tasks.submitter.retry(retried, { failedImages: true }))).message).to.match(/cannot be retried: it ended succeeded with no chunk/);
    await expectNothingInFlight();
  });

  it('reruns, when asked, only the failed images of committed chunks: their new results replace the errors, once', async () => {
    const task = spec();
    const images = ['s3://visionq/in/00.png', 's3://visionq/late/a.png', 's3://visionq/in/01.png', 's3://visionq/late/b.png', 's3://visionq/in/02.png', 's3://visionq/in/03.png', 's3://visionq/late/c.png'];
    const first = await runTask(store, async () => {
      await tasks.submitter.submit(task, { images });
      return task.id;
    });
    expect(first).to.include({ status: 'completed_with_errors', done: 7, succeeded: 4, failed: 3 });
    expect((await rejection(tasks.submitter.retry(first, { failedImages: false }))).message).to.match(/with no chunk that used up its attempts \(failed_images: true also runs failed images again\)/);

    // The missing objects arrive; only they run again (chunk 0 has two, chunk 1 one).
    for (const name of ['a', 'b', 'c']) await store.put(`s3://visionq/late/${name}.png`, png);
    const reads: string[] = [];
    const counting = Object.assign(Object.create(store) as ObjectStore, {
      getBytes: (uri: string, maxBytes: number) => (reads.push(uri), store.getBytes(uri, maxBytes)),
    });
    const second = await runTask(counting, async () => {
      await tasks.submitter.retry(first, { failedImages: true });
      return task.id;
    });
    expect(second).to.include({ status: 'succeeded', total: 7, done: 7, succeeded: 7, failed: 0, retries: 1 });
    expect(reads.filter((uri) => uri.includes('/in/'))).to.deep.equal([]);
    expect(reads.filter((uri) => uri.includes('/late/')).sort()).to.deep.equal(['s3://visionq/late/a.png', 's3://visionq/late/b.png', 's3://visionq/late/c.png']);
    const lines = (await tasks.results.page(second, null, 100)).results;
    expect(lines.map((l) => l.image)).to.deep.equal(images);
    expect(lines.every((l) => 'predictions' in l)).to.equal(true);
    expect((await store.getBytes(ResultStore.partUri(task, 0, 1), 1 << 20)).toString().trim().split('\n')).to.have.length(5);
    await expectNothingInFlight();
  });

  it('keeps a listing that used up its attempts, and a retry lists on from that page', async () => {
    let outage = true;
    const source = Object.assign(Object.create(store) as ObjectStore, {
      list: (uri: string, options: { cursor?: string | null; limit: number }) =>
        outage && options.cursor ? Promise.reject(new StoreUnavailableError('injected listing outage')) : store.list(uri, options),
    });
    const task = { ...spec(), source: 's3://visionq/in/' };
    const failed = await runTask(source, async () => {
      await tasks.submitter.submit(task, { source: task.source });
      return task.id;
    });
    expect(failed).to.include({ status: 'failed', total: 10, done: 10, listed: false });
    expect(failed.failedListing).to.deep.include({ page: 1, attempts: 3 });
    expect(failed.error!.message).to.match(/^the listing of page 1 failed after 3 attempts/);
    outage = false;
    const retried = await runTask(source, async () => {
      await tasks.submitter.retry(failed, { failedImages: false });
      return task.id;
    });
    expect(retried).to.include({ status: 'succeeded', total: 40, done: 40, chunks: 8, listed: true, retries: 1 });
    expect(retried.failedListing).to.equal(undefined);
    expect((await tasks.results.page(retried, null, 100)).results).to.have.length(40);
    await expectNothingInFlight();
  });

  /** Every task has ended: nothing is left in its model's backlog or its tenant's images in flight. */
  async function expectNothingInFlight(): Promise<void> {
    expect(await tasks.store.backlog(MODEL)).to.deep.equal({ images: 0, oldestMs: null });
    expect(await redis.get(tasks.keys.inFlight('default'))).to.equal(null);
  }

  it('fails a task at once, without retries, when its source cannot be addressed, and lists a good one page by page', async () => {
    const submitSource = (source: string) => async () => {
      const task = { ...spec(), source };
      await tasks.submitter.submit(task, { source });
      return task.id;
    };
    const failed = await runTask(store, submitSource('s3://visionq/a//'));
    expect(failed).to.include({ status: 'failed' });
    expect(failed.error!.code).to.equal('invalid_argument');
    // Listed in pages of 10 into chunks of 5: 40 images, 8 chunks, each counted once.
    expect(await runTask(store, submitSource('s3://visionq/in/'))).to.include({ status: 'succeeded', total: 40, done: 40, chunks: 8, listed: true });
  });
});
