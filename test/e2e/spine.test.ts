import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '@visionq/config';
import { openClassifier } from '@visionq/inference';
import { createLogger } from '@visionq/observability';
import type { S3ObjectStore } from '@visionq/object-store';
import { Cluster } from '../support/cluster';
import { BUNDLED_MODELS_DIR, FASHION_DIR } from '../support/model-fixtures';
import { createBucket, motoStore, startMotoServer, type MotoServer } from '../support/moto-server';

const MAX_IMAGE_BYTES = 300_000;
const MAX_TASK_IMAGES = 600;
const CHUNK_SIZE = 20;

async function inBatches<T>(items: T[], size: number, f: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(f));
}

describe('the spine: gateway, queue, two workers, S3 (whole processes)', function () {
  this.timeout(180_000);
  const bucket = `vq-spine-${randomBytes(4).toString('hex')}`;
  let moto: MotoServer;
  let store: S3ObjectStore;
  let cluster: Cluster;
  let fashionFiles: string[];
  let many: string[];

  before(async () => {
    moto = await startMotoServer();
    await createBucket(moto, bucket);
    store = motoStore(moto);
    fashionFiles = (await readdir(FASHION_DIR)).filter((f) => f.endsWith('.png')).sort();
    const bytes = new Map(await Promise.all(fashionFiles.map(async (f) => [f, await readFile(join(FASHION_DIR, f))] as const)));
    await inBatches(fashionFiles, 20, (f) => store.put(`s3://${bucket}/fashion/${f}`, bytes.get(f)!));
    many = Array.from({ length: 500 }, (_, i) => `s3://${bucket}/many/img-${String(i).padStart(4, '0')}.png`);
    await inBatches(many, 25, (uri, ) => store.put(uri, bytes.get(fashionFiles[Number(uri.slice(-8, -4)) % fashionFiles.length]!)!));
    cluster = await Cluster.start({
      moto,
      bucket,
      workers: 2,
      env: { CHUNK_SIZE: String(CHUNK_SIZE), MAX_IMAGE_BYTES: String(MAX_IMAGE_BYTES), MAX_TASK_IMAGES: String(MAX_TASK_IMAGES), PREDICT_TIMEOUT_MS: '20000' },
    });
  });

  after(async () => {
    await cluster?.stop();
    store?.close();
    await moto?.stop();
  });

  it('spreads a 500-image task over both workers and counts every image exactly once', async () => {
    const submit = await cluster.request('POST', '/batch_predict', { images: many });
    expect(submit.status, JSON.stringify(submit.body)).to.equal(202);
    expect(submit.body).to.include({ status: 'queued', status_url: `/tasks/${submit.body.task_id}` });
    const task = await cluster.waitForTask(submit.body.task_id);
    expect(task.status).to.equal('succeeded');
    expect(task.progress).to.deep.equal({ total: 500, done: 500, succeeded: 500, failed: 0 });
    expect(task).to.not.have.property('results'); // over INLINE_RESULTS_LIMIT

    // Pages of 37 cross chunk boundaries (chunks hold 20).
    const results = await cluster.allResults(submit.body.task_id, 37);
    expect(results.map((r) => r.image)).to.deep.equal(many);
    expect(results.every((r) => r.predictions?.length === 5)).to.equal(true);

    const chunksBy = cluster.workers.map((w) => Cluster.lines(w, 'chunk done').filter((l) => l.task_id === submit.body.task_id));
    expect(chunksBy[0]!.length, 'worker 0 took chunks').to.be.greaterThan(0);
    expect(chunksBy[1]!.length, 'worker 1 took chunks').to.be.greaterThan(0);
    expect(chunksBy.flat().reduce((n, l) => n + (l.images as number), 0)).to.equal(500);
  });

  it('gives good and bad images of one task each their own line: completed_with_errors', async () => {
    const png = await readFile(join(FASHION_DIR, fashionFiles[0]!));
    const bad: Record<string, [Buffer | null, string]> = {
      'missing.png': [null, 'image_not_found'],
      'corrupt.png': [Buffer.concat([png.subarray(0, 40), randomBytes(300)]), 'image_decode_failed'],
      'notes.jpg': [Buffer.from('this is a text file with a .jpg name\n'), 'image_decode_failed'],
      'huge.png': [Buffer.concat([png, randomBytes(MAX_IMAGE_BYTES)]), 'image_too_large'],
    };
    for (const [name, [bytes]] of Object.entries(bad)) if (bytes) await store.put(`s3://${bucket}/mixed/${name}`, bytes);
    const good = fashionFiles.slice(0, 3).map((f) => `s3://${bucket}/fashion/${f}`);
    const images = [good[0]!, ...Object.keys(bad).map((n) => `s3://${bucket}/mixed/${n}`), ...good.slice(1)];

    const submit = await cluster.request('POST', '/batch_predict', { images, top_k: 2, metadata: { batch: 'mixed' } });
    expect(submit.status).to.equal(202);
    const task = await cluster.waitForTask(submit.body.task_id);
    expect(task.status).to.equal('completed_with_errors');
    expect(task.progress).to.deep.equal({ total: 7, done: 7, succeeded: 3, failed: 4 });
    expect(task.metadata).to.deep.equal({ batch: 'mixed' });
    // Small tasks carry their results inline, in submission order.
    expect(task.results.map((r: any) => r.image)).to.deep.equal(images);
    for (const [name, [, code]] of Object.entries(bad)) {
      const line = task.results.find((r: any) => r.image.endsWith(`/mixed/${name}`));
      expect(line, name).to.have.nested.property('error.code', code);
      expect(line.error.message, name).to.be.a('string').and.not.be.empty;
      expect(line, name).to.not.have.property('predictions');
    }
    for (const uri of good) expect(task.results.find((r: any) => r.image === uri).predictions).to.have.length(2);
  });

  it('answers POST /predict synchronously, for an upload and for a URI', async () => {
    const form = new FormData();
    form.append('file', new Blob([await readFile(join(FASHION_DIR, '0000-ankle_boot.png'))]), '0000-ankle_boot.png');
    const upload = await cluster.request('POST', '/predict', form);
    expect(upload.status, JSON.stringify(upload.body)).to.equal(200);
    expect(upload.body.model).to.deep.equal({ name: 'fashion-vgg', version: '1' });
    expect(upload.body.predictions).to.have.length(5);
    expect(upload.body.predictions[0]).to.include({ class_id: 9, label: 'Ankle boot' });
    expect(upload.body.predictions[0].probability).to.be.greaterThan(0.99);

    const byUri = await cluster.request('POST', '/predict', { image: `s3://${bucket}/fashion/0001-pullover.png`, top_k: 1 });
    expect(byUri.status, JSON.stringify(byUri.body)).to.equal(200);
    expect(byUri.body.predictions).to.have.length(1);
    expect(byUri.body.predictions[0]).to.include({ class_id: 2, label: 'Pullover' });
    // The one-image task behind it can be polled like any other.
    const task = await cluster.request('GET', `/tasks/${byUri.body.task_id}`);
    expect(task.body).to.include({ status: 'succeeded' });

    const missing = await cluster.request('POST', '/predict', { image: `s3://${bucket}/nowhere.png` });
    expect(missing.status).to.equal(404);
    expect(missing.body.error.code).to.equal('image_not_found');
  });

  it('takes a multipart upload of many files as one task', async () => {
    const form = new FormData();
    const names = fashionFiles.slice(10, 14);
    for (const name of names) form.append('files', new Blob([await readFile(join(FASHION_DIR, name))]), name);
    form.append('top_k', '3');
    const submit = await cluster.request('POST', '/batch_predict', form);
    expect(submit.status, JSON.stringify(submit.body)).to.equal(202);
    const task = await cluster.waitForTask(submit.body.task_id);
    expect(task.status).to.equal('succeeded');
    expect(task.progress.total).to.equal(4);
    expect(task.results.map((r: any) => r.image.split('/').pop())).to.deep.equal(names.map((n, i) => `0000${i}-${n}`));
    expect(task.results.every((r: any) => r.predictions.length === 3)).to.equal(true);
  });

  it('classifies a source prefix as the engine does image by image, and streams it as NDJSON', async () => {
    const submit = await cluster.request('POST', '/batch_predict', { source: `s3://${bucket}/fashion/`, top_k: 1 });
    expect(submit.status).to.equal(202);
    const task = await cluster.waitForTask(submit.body.task_id);
    expect(task.status).to.equal('succeeded');
    expect(task.progress).to.deep.equal({ total: 200, done: 200, succeeded: 200, failed: 0 });
    expect(task.listing_complete).to.equal(true);

    const paged = await cluster.allResults(submit.body.task_id, 64);
    const stream = await cluster.request('GET', `/tasks/${submit.body.task_id}/results`, undefined, { accept: 'application/x-ndjson' });
    expect(stream.headers.get('content-type')).to.match(/^application\/x-ndjson/);
    const streamed = (stream.body as string).trim().split('\n').map((l) => JSON.parse(l));
    expect(streamed).to.deep.equal(paged);
    expect(paged.map((r) => r.image)).to.deep.equal(fashionFiles.map((f) => `s3://${bucket}/fashion/${f}`));

    // The engine in this process, on the same files.
    const logger = createLogger({ silent: true });
    const config = loadConfig({ MODELS_DIR: BUNDLED_MODELS_DIR, MAX_BATCH_SIZE: '16', MAX_QUEUE_DELAY_MS: '2', MAX_IMAGE_BYTES: String(MAX_IMAGE_BYTES), MAX_IMAGE_PIXELS: String(1 << 24) });
    const { classifier, close } = await openClassifier(config, { logger, only: ['fashion-vgg'], warmup: false });
    try {
      const expected: { images: Array<{ file: string; label: number }> } = JSON.parse(await readFile(join(FASHION_DIR, 'expected.json'), 'utf8'));
      const label = new Map(expected.images.map((i) => [i.file, i.label]));
      let engineCorrect = 0;
      let systemCorrect = 0;
      for (const [i, file] of fashionFiles.entries()) {
        const local = await classifier.classify(file, await readFile(join(FASHION_DIR, file)), 'fashion-vgg', 1);
        if (!('predictions' in local)) throw new Error(local.error.message);
        const remote = paged[i].predictions[0];
        expect(remote.class_id, file).to.equal(local.predictions[0]!.class_id);
        expect(remote.probability, file).to.be.closeTo(local.predictions[0]!.probability, 1e-5);
        if (local.predictions[0]!.class_id === label.get(file)) engineCorrect++;
        if (remote.class_id === label.get(file)) systemCorrect++;
      }
      expect(systemCorrect / 200).to.equal(engineCorrect / 200);
      expect(systemCorrect / 200).to.be.greaterThan(0.85);
    } finally {
      await close();
    }
  });

  it('cancels a task mid-way: no new chunk starts, and it stays cancelled', async () => {
    const submit = await cluster.request('POST', '/batch_predict', { images: many, priority: 'low' });
    expect(submit.status).to.equal(202);
    const cancel = await cluster.request('DELETE', `/tasks/${submit.body.task_id}`);
    expect(cancel.status, JSON.stringify(cancel.body)).to.equal(200);
    expect(cancel.body.status).to.equal('cancelled');
    expect(cancel.body.finished_at).to.be.a('string');
    // Chunks already running when the cancel landed finish (or are dropped), the rest are skipped: wait for that.
    await cluster.queuesSettled();
    const task = (await cluster.request('GET', `/tasks/${submit.body.task_id}`)).body;
    expect(task.status).to.equal('cancelled');
    expect(task.progress.done).to.be.below(500);
    expect(task.progress.done % CHUNK_SIZE).to.equal(0);
    const results = await cluster.allResults(submit.body.task_id);
    expect(results).to.have.length(task.progress.done);
    expect(new Set(results.map((r) => r.image)).size).to.equal(results.length);
    // Cancelling it again is a conflict, like cancelling any task that has ended.
    const again = await cluster.request('DELETE', `/tasks/${submit.body.task_id}`);
    expect(again.status).to.equal(409);
    expect(again.body.error).to.include({ code: 'conflict' });
  });

  it('refuses bad requests with their error, enqueuing nothing', async () => {
    const before = await cluster.footprint();
    const image = `s3://${bucket}/fashion/${fashionFiles[0]}`;
    const cases: Array<[string, string | object, Record<string, string>, number, string]> = [
      ['malformed JSON', '{"images": [', { 'content-type': 'application/json' }, 400, 'invalid_request'],
      ['not JSON at all', 'images=1', { 'content-type': 'text/plain' }, 415, 'unsupported_media_type'],
      ['empty list', { images: [] }, {}, 400, 'invalid_request'],
      ['both images and source', { images: [image], source: `s3://${bucket}/fashion/` }, {}, 400, 'invalid_request'],
      ['too many images', { images: Array.from({ length: MAX_TASK_IMAGES + 1 }, () => image) }, {}, 400, 'invalid_request'],
      ['unknown model', { images: [image], model: 'resnet-nope' }, {}, 404, 'model_not_found'],
      ['unknown version', { images: [image], model: 'fashion-vgg@9' }, {}, 404, 'model_not_found'],
      ['neither NAME nor NAME@VERSION', { images: [image], model: 'fashion-vgg@' }, {}, 400, 'invalid_argument'],
      ['URI outside the allow-list', { images: ['s3://someone-elses-bucket/cat.jpg'] }, {}, 403, 'forbidden'],
      ['source outside the allow-list', { source: 's3://someone-elses-bucket/' }, {}, 403, 'forbidden'],
      ['output outside the allow-list', { images: [image], output: 's3://someone-elses-bucket/out/' }, {}, 403, 'forbidden'],
      ['not a URI', { images: ['/etc/passwd'] }, {}, 400, 'invalid_argument'],
      ['a folder, not an image', { images: [`s3://${bucket}/fashion/`] }, {}, 400, 'invalid_argument'],
      ['top_k above the classes', { images: [image], top_k: 11 }, {}, 400, 'invalid_argument'],
      ['unknown field', { images: [image], colour: 'red' }, {}, 400, 'invalid_request'],
      ['callback_url', { images: [image], callback_url: 'http://127.0.0.1:9/hook' }, {}, 400, 'unsupported_option'],
    ];
    for (const [what, body, headers, status, code] of cases) {
      const reply = await cluster.request('POST', '/batch_predict', body, headers);
      expect(reply.status, what).to.equal(status);
      expect(reply.body.error, what).to.include({ code });
      expect(reply.body.error.message, what).to.be.a('string').and.not.be.empty;
      expect(reply.body.error.details, what).to.be.an('array');
    }
    const predictBad = await cluster.request('POST', '/predict', { image, model: 'resnet-nope' });
    expect(predictBad.status).to.equal(404);
    const noFiles = new FormData();
    noFiles.append('top_k', '3');
    expect((await cluster.request('POST', '/batch_predict', noFiles)).body.error.code).to.equal('invalid_request');
    const badField = new FormData();
    badField.append('files', new Blob([Buffer.from('x')]), 'x.png');
    badField.append('model', 'resnet-nope');
    expect((await cluster.request('POST', '/batch_predict', badField)).body.error.code).to.equal('model_not_found');
    const oversized = new FormData();
    oversized.append('files', new Blob([Buffer.from('ok')]), 'small.png');
    oversized.append('files', new Blob([randomBytes(MAX_IMAGE_BYTES + 1)]), 'huge.png');
    const tooLarge = await cluster.request('POST', '/batch_predict', oversized);
    expect(tooLarge.status).to.equal(413);
    expect(tooLarge.body.error.code).to.equal('payload_too_large');
    expect(await cluster.footprint()).to.deep.equal(before);
    // Refused uploads leave nothing in the store either.
    const left = (await store.list(`s3://${bucket}/uploads/`, { limit: 1000 })).objects.map((o) => o.key.split('/').pop()!);
    expect(left.filter((name) => /-(x|small|huge)\.png$/.test(name))).to.deep.equal([]);
  });

  it('makes a retried submit with the same Idempotency-Key return the same task, and refuses a changed body', async () => {
    const key = `retry-${randomBytes(4).toString('hex')}`;
    const body = { images: [`s3://${bucket}/fashion/${fashionFiles[5]}`] };
    const first = await cluster.request('POST', '/batch_predict', body, { 'idempotency-key': key });
    const second = await cluster.request('POST', '/batch_predict', body, { 'idempotency-key': key });
    expect(first.status).to.equal(202);
    expect(second.status).to.equal(202);
    expect(second.body.task_id).to.equal(first.body.task_id);
    const changed = await cluster.request('POST', '/batch_predict', { ...body, top_k: 1 }, { 'idempotency-key': key });
    expect(changed.status).to.equal(409);
    expect(changed.body.error.code).to.equal('conflict');
  });

  it('lists models with their live workers, reports readiness, and 404s unknown tasks', async () => {
    const models = await cluster.request('GET', '/models');
    expect(models.body.models).to.have.length(1);
    expect(models.body.models[0]).to.deep.include({ name: 'fashion-vgg', default: true, classes: 10, workers: 2, providers: ['cpu'] });
    expect(models.body.models[0].input.shape).to.deep.equal(['N', 3, 224, 224]);
    const ready = await cluster.request('GET', '/readyz');
    expect(ready.status).to.equal(200);
    expect(ready.body.checks).to.deep.equal({ gateway: 'ok', redis: 'ok', store: 'ok', workers: '2 live' });
    expect((await cluster.request('GET', '/healthz')).body).to.deep.equal({ status: 'ok' });
    const unknown = await cluster.request('GET', '/tasks/00000000-0000-0000-0000-000000000000');
    expect(unknown.status).to.equal(404);
    expect(unknown.body.error.code).to.equal('not_found');
    expect((await cluster.request('GET', '/nowhere')).status).to.equal(404);
    const metrics = await cluster.request('GET', '/metrics');
    expect(metrics.status).to.equal(200);
    expect(metrics.body).to.match(/^visionq_workers_live\{service="gateway"\} 2$/m);
    expect(metrics.body).to.match(/^visionq_queue_backlog\{model="fashion-vgg",version="1",service="gateway"\} \d+$/m);
    expect(metrics.body).to.match(/^visionq_queue_oldest_seconds\{model="fashion-vgg",version="1",service="gateway"\} [\d.]+$/m);
    expect(metrics.body).to.match(/^visionq_tasks_submitted_total\{model="fashion-vgg",version="1",kind="batch",service="gateway"\} [1-9]\d*$/m);
    expect(metrics.body).to.match(/^visionq_http_requests_total\{method="GET",route="\/tasks\/:id",status="404",service="gateway"\} 1$/m);
  });
});
