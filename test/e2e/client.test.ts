import { expect } from 'chai';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VisionqClient, VisionqClientError, type Upload } from '@visionq/client';
import { openFile } from '@visionq/client/node';
import type { TaskView } from '@visionq/api';
import { createKey } from '../support/api-keys';
import { Cluster } from '../support/cluster';
import { ANKLE_BOOT_PNG, FASHION_DIR, PHOTOS_DIR } from '../support/model-fixtures';

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

/** The client against a real gateway and worker that want API keys. */
describe('@visionq/client against a gateway and a worker (whole processes, API keys)', function () {
  this.timeout(120_000);
  const bucket = `vq-client-${randomBytes(4).toString('hex')}`;
  let dir: string;
  let cluster: Cluster;
  let client: VisionqClient;
  let rateKey: string;
  let key: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vq-client-'));
    const keysFile = join(dir, 'keys.json');
    key = createKey(keysFile, '--tenant', 'acme');
    rateKey = createKey(keysFile, '--tenant', 'slow', '--rate-per-s', '1');
    cluster = await Cluster.start({ bucket, workers: 1, env: { API_KEYS_FILE: keysFile } });
    client = new VisionqClient({ url: cluster.url, key });
    for (const name of ['0000-ankle_boot.png', '0001-pullover.png', '0002-trouser.png']) {
      await cluster.putLocal(`acme/in/${name}`, await readFile(join(FASHION_DIR, name)));
    }
  });

  after(async () => {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('uploads files, waits on the events with growing progress, and reads every result once', async () => {
    const names = ['chelsea.png', 'coffee.png', 'rocket.jpg'];
    const files: Upload[] = await Promise.all(names.map((n) => openFile(join(PHOTOS_DIR, n))));
    const accepted = await client.submit({ files, topK: 2, metadata: { job: 'client-test' } });
    expect(accepted.status).to.equal('queued');
    const seen: TaskView[] = [];
    const final = await client.wait(accepted.task_id, { onProgress: (v) => seen.push(v) });
    expect(final.status).to.equal('succeeded');
    expect(final.progress).to.deep.equal({ total: 3, done: 3, succeeded: 3, failed: 0 });
    expect(seen.at(-1)).to.deep.equal(final);
    const done = seen.map((v) => v.progress.done);
    expect(done, 'progress never goes back').to.deep.equal([...done].sort((a, b) => a - b));
    expect(seen[0]!.progress.done).to.be.below(3);

    const results = await collect(client.results(accepted.task_id));
    expect(results.map((r) => r.image.replace(/^.*\/\d{5}-/, '')).sort()).to.deep.equal(names);
    for (const r of results) expect('predictions' in r && r.predictions).to.have.length(2);
    expect((await client.get(accepted.task_id)).metadata).to.deep.equal({ job: 'client-test' });
  });

  it('submits object URIs and a source prefix', async () => {
    const images = await client.submit({ images: [`s3://${bucket}/acme/in/0000-ankle_boot.png`], topK: 1, priority: 'high' });
    const source = await client.submit({ source: `s3://${bucket}/acme/in/` });
    expect((await client.wait(images.task_id)).progress).to.include({ total: 1, succeeded: 1 });
    expect((await client.wait(source.task_id)).progress).to.include({ total: 3, succeeded: 3 });
    const [line] = await collect(client.results(images.task_id));
    expect(line).to.deep.include({ image: `s3://${bucket}/acme/in/0000-ankle_boot.png` });
    expect(line && 'predictions' in line && line.predictions[0]!.label).to.equal('Ankle boot');
  });

  it('classifies one image by upload and by URI', async () => {
    const uploaded = await client.predict(await openFile(ANKLE_BOOT_PNG), { topK: 1 });
    expect(uploaded.predictions[0]!.label).to.equal('Ankle boot');
    const byUri = await client.predict(`s3://${bucket}/acme/in/0000-ankle_boot.png`, { topK: 3 });
    expect(byUri.predictions).to.have.length(3);
  });

  it('makes one task of a submit whose answer was lost, under the key it generated', async () => {
    const answers: Response[] = [];
    // The gateway takes the first request, but its answer never reaches the caller.
    const losing: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      answers.push(res.clone());
      if (answers.length > 1) return res;
      return new Response(JSON.stringify({ error: { code: 'unavailable', message: 'lost on the way', details: [] } }), { status: 503 });
    };
    const flaky = new VisionqClient({ url: cluster.url, key, fetch: losing, retry: { backoffMs: 1 } });
    const accepted = await flaky.submit({ images: [`s3://${bucket}/acme/in/0001-pullover.png`] });
    expect(answers).to.have.length(2);
    const first = (await answers[0]!.json()) as { task_id: string };
    expect(accepted.task_id).to.equal(first.task_id);
    expect(answers[1]!.headers.get('idempotent-replayed')).to.equal('true');
  });

  it('cancels a task, and a second cancel is a typed 409', async () => {
    const images = Array.from({ length: 400 }, () => `s3://${bucket}/acme/in/0002-trouser.png`);
    const { task_id } = await client.submit({ images, priority: 'low' });
    const cancelled = await client.cancel(task_id);
    expect(cancelled.status).to.equal('cancelled');
    const again = await client.cancel(task_id).catch((e: unknown) => e);
    expect(again).to.be.instanceOf(VisionqClientError).and.include({ status: 409, code: 'conflict' });
    expect((await client.wait(task_id)).status).to.equal('cancelled');
  });

  it('retries the failed images once a missing one has arrived', async () => {
    const late = `acme/late/${randomUUID()}.png`;
    const { task_id } = await client.submit({ images: [`s3://${bucket}/acme/in/0000-ankle_boot.png`, `s3://${bucket}/${late}`] });
    const first = await client.wait(task_id);
    expect(first.status).to.equal('completed_with_errors');
    const notYet = await client.retry(task_id).catch((e: unknown) => e);
    expect(notYet, 'no chunk failed: nothing to retry without failedImages').to.be.instanceOf(VisionqClientError).and.include({ status: 409, code: 'conflict' });
    await cluster.putLocal(late, await readFile(ANKLE_BOOT_PNG));
    expect((await client.retry(task_id, { failedImages: true })).retries).to.equal(1);
    const final = await client.wait(task_id);
    expect(final).to.deep.include({ status: 'succeeded', retries: 1 });
    expect(final.progress).to.deep.equal({ total: 2, done: 2, succeeded: 2, failed: 0 });
    const lines = await collect(client.results(task_id));
    expect(lines.filter((l) => 'error' in l)).to.deep.equal([]);
  });

  it('turns refusals into VisionqClientError with the status, code and details', async () => {
    const anonymous = await new VisionqClient({ url: cluster.url }).get(randomUUID()).catch((e: unknown) => e);
    expect(anonymous).to.be.instanceOf(VisionqClientError).and.include({ status: 401, code: 'unauthorized' });
    expect((anonymous as VisionqClientError).details).to.deep.equal([{ field: 'Authorization', message: 'missing' }]);

    const id = randomUUID();
    const missing = await client.get(id).catch((e: unknown) => e);
    expect(missing).to.be.instanceOf(VisionqClientError).and.include({ status: 404, code: 'not_found', message: `no task ${id}` });

    const bad = (await client.submit({ images: ['https://example.com/cat.jpg'] }).catch((e: unknown) => e)) as VisionqClientError;
    expect(bad).to.be.instanceOf(VisionqClientError).and.include({ status: 400, code: 'invalid_argument' });
    expect(bad.details[0]).to.have.property('field', 'images[0]');

    const both = await client.submit({ images: ['s3://b/k'], source: 's3://b/' }).catch((e: unknown) => e);
    expect(both).to.be.instanceOf(TypeError).with.property('message').that.matches(/exactly one of images, source and files/);
  });

  it("lists the tenant's tasks newest first, page after page, and no other tenant's", async () => {
    const first = await client.list({ limit: 2 });
    expect(first.tasks).to.have.length(2);
    expect(first.next_cursor).to.be.a('string');
    const all = await collect(client.listAll({ limit: 2 }));
    expect(all.length, 'every task the tests above made').to.be.at.least(7);
    expect(all.slice(0, 2).map((t) => t.task_id)).to.deep.equal(first.tasks.map((t) => t.task_id));
    expect(new Set(all.map((t) => t.task_id)).size).to.equal(all.length);
    const created = all.map((t) => t.created_at);
    expect(created).to.deep.equal([...created].sort().reverse());
    const cancelled = await collect(client.listAll({ status: 'cancelled' }));
    expect(cancelled.map((t) => t.status)).to.deep.equal(['cancelled']);
    expect((await new VisionqClient({ url: cluster.url, key: rateKey }).list()).tasks).to.deep.equal([]);
  });

  it('waits out a 429 as long as Retry-After says, then succeeds', async () => {
    const attempts: Array<{ at: number; status: number; retryAfter: string | null }> = [];
    const recording: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      attempts.push({ at: Date.now(), status: res.status, retryAfter: res.headers.get('retry-after') });
      return res;
    };
    const slow = new VisionqClient({ url: cluster.url, key: rateKey, fetch: recording });
    // One request a second: within a few calls one lands in a window already used.
    for (let calls = 0; calls < 10 && !attempts.some((a) => a.status === 429); calls++) {
      expect(await slow.get(randomUUID()).catch((e: unknown) => e)).to.be.instanceOf(VisionqClientError).and.include({ status: 404 });
    }
    const limited = attempts.findIndex((a) => a.status === 429);
    expect(limited, 'a 429 was met').to.be.at.least(0);
    const next = attempts[limited + 1]!;
    expect(next.status, 'the attempt after the 429').to.not.equal(429);
    expect(next.at - attempts[limited]!.at).to.be.at.least(Number(attempts[limited]!.retryAfter) * 1000);
  });
});
