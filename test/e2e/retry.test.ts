import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFile, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Cluster } from '../support/cluster';
import { ANKLE_BOOT_PNG } from '../support/model-fixtures';
import { readEvents } from '../support/sse';
import { startWebhookReceiver } from '../support/webhook-receiver';
import { verify } from '../support/webhook-verifier';

const SECRET = `whsec_${randomBytes(24).toString('base64')}`;

describe('failed chunks, POST /tasks/:id/retry, and progress callbacks (whole processes)', function () {
  this.timeout(180_000);
  const bucket = `vq-retry-${randomBytes(4).toString('hex')}`;
  let cluster: Cluster;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  let hook: string;
  let png: Buffer;
  const calls = (task: string) => receiver.received.filter((r) => r.task === task);

  before(async () => {
    receiver = await startWebhookReceiver();
    hook = receiver.url;
    png = await readFile(ANKLE_BOOT_PNG);
    cluster = await Cluster.start({
      bucket,
      workers: 1,
      env: { CHUNK_SIZE: '2', CHUNK_ATTEMPTS: '2', WEBHOOK_SECRET: SECRET, CALLBACK_ALLOWED_HOSTS: '127.0.0.1', CALLBACK_PROGRESS_INTERVAL_S: '1' },
    });
  });

  after(async () => {
    await cluster?.stop();
    receiver?.close();
  });

  it('lists a chunk that used up its attempts, reruns it and the failed images on request, each image once, and tells each ending', async () => {
    const uri = (key: string) => `s3://${bucket}/${key}`;
    for (const key of ['in/a.png', 'in/b.png', 'in/c.png', 'in/d.png']) await cluster.putLocal(key, png);
    // A link to itself where an image should be: opening it fails (ELOOP) as no image error covers, so its chunk is retried until it gives up.
    const loop = join(cluster.dataDir, bucket, 'in', 'loop.png');
    await symlink('loop.png', loop);
    const images = ['in/a.png', 'in/b.png', 'in/loop.png', 'in/c.png', 'in/late.png', 'in/d.png'].map(uri);
    const submit = await cluster.request('POST', '/batch_predict', { images, callback_url: `${hook}?task=retry` });
    expect(submit.status, JSON.stringify(submit.body)).to.equal(202);
    const id = submit.body.task_id;

    const failed = await cluster.waitForTask(id);
    expect(failed).to.deep.include({ status: 'failed', retries: 0, progress: { total: 6, done: 4, succeeded: 3, failed: 1 } });
    expect(failed.failed_chunks).to.have.length(1);
    expect(failed.failed_chunks[0]).to.deep.include({ index: 1, images: 2, attempts: 2 });
    expect(failed.error.message).to.match(/^1 of 3 chunks failed after 2 attempts .*POST \/tasks\/.*\/retry runs them again$/);
    expect((await cluster.allResults(id)).map((r) => r.image)).to.deep.equal([images[0], images[1], images[4], images[5]]);

    // Bad retries: a wrong body, a running or unknown task.
    const wrong = await cluster.request('POST', `/tasks/${id}/retry`, { failed_images: 'yes' });
    expect([wrong.status, wrong.body.error.code]).to.deep.equal([400, 'invalid_request']);
    expect((await cluster.request('POST', '/tasks/00000000-0000-4000-8000-000000000000/retry')).status).to.equal(404);

    // The cause goes away; the retry runs chunk 1 and, as asked, the one failed image of chunk 2.
    await rm(loop);
    await cluster.putLocal('in/loop.png', png);
    await cluster.putLocal('in/late.png', png);
    const retry = await cluster.request('POST', `/tasks/${id}/retry`, { failed_images: true });
    expect(retry.status, JSON.stringify(retry.body)).to.equal(202);
    expect(retry.body).to.include({ task_id: id, status: 'running', retries: 1 });
    expect(retry.body.failed_chunks).to.equal(undefined);
    const done = await cluster.waitForTask(id);
    expect(done).to.deep.include({ status: 'succeeded', retries: 1, progress: { total: 6, done: 6, succeeded: 6, failed: 0 } });
    const results = await cluster.allResults(id);
    expect(results.map((r) => r.image)).to.deep.equal(images);
    expect(results.every((r) => 'predictions' in r)).to.equal(true);
    const again = await cluster.request('POST', `/tasks/${id}/retry`);
    expect([again.status, again.body.error.code]).to.deep.equal([409, 'conflict']);

    // The event log holds both endings; its stream closes after the last one only.
    const { events } = await readEvents(`${cluster.url}/tasks/${id}/events`, {});
    const statuses = events.map((e) => `${e.event}:${JSON.parse(e.data).status}`);
    expect(statuses.filter((s) => s.startsWith('ended'))).to.deep.equal(['ended:failed', 'ended:succeeded']);
    expect(statuses.at(-1)).to.equal('ended:succeeded');
    expect(statuses.indexOf('ended:failed')).to.be.below(statuses.length - 2);

    // Each ending is told once, under an id of its own, signed.
    for (let i = 0; i < 100 && calls('retry').length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    const told = calls('retry');
    expect(told.map((c) => [c.headers['webhook-id'], JSON.parse(c.body).status])).to.deep.equal([
      [`msg_${id}_ended`, 'failed'],
      [`msg_${id}_ended_r1`, 'succeeded'],
    ]);
    for (const call of told) expect(verify(SECRET, call.headers, call.body)).to.equal(true);
  });

  it('refuses a retry of a task that ended without failures, and `events` without a callback', async () => {
    const image = await cluster.putLocal('in/ok.png', png);
    const submit = await cluster.request('POST', '/batch_predict', { images: [image] });
    await cluster.waitForTask(submit.body.task_id);
    const reply = await cluster.request('POST', `/tasks/${submit.body.task_id}/retry`, { failed_images: true });
    expect([reply.status, reply.body.error.code]).to.deep.equal([409, 'conflict']);
    expect(reply.body.error.message).to.match(/ended succeeded with no chunk that used up its attempts and no failed image/);
    const events = await cluster.request('POST', '/batch_predict', { images: [image], events: ['progress'] });
    expect([events.status, events.body.error.details[0].field]).to.deep.equal([400, 'events']);
  });

  it('POSTs progress at most once per CALLBACK_PROGRESS_INTERVAL_S while a task runs, then its ending once', async () => {
    const image = await cluster.putLocal('in/many.png', png);
    const submit = await cluster.request('POST', '/batch_predict', { images: Array.from({ length: 400 }, () => image), callback_url: `${hook}?task=progress`, events: ['progress'] });
    expect(submit.status, JSON.stringify(submit.body)).to.equal(202);
    const view = await cluster.waitForTask(submit.body.task_id);
    expect(view.callback.events).to.deep.equal(['progress', 'ended']);
    for (let i = 0; i < 100 && !calls('progress').some((c) => JSON.parse(c.body).status === 'succeeded'); i++) await new Promise((resolve) => setTimeout(resolve, 100));

    const told = calls('progress');
    const endings = told.filter((c) => JSON.parse(c.body).status === 'succeeded');
    const progress = told.filter((c) => JSON.parse(c.body).status === 'running');
    expect(endings).to.have.length(1);
    expect(progress.length, 'progress callbacks').to.be.at.least(1);
    expect(progress.length + endings.length).to.equal(told.length);
    for (const call of told) expect(verify(SECRET, call.headers, call.body)).to.equal(true);
    // At most one a second: their signed timestamps (whole seconds) never repeat, and there are no more than the seconds the task ran.
    const stamps = progress.map((c) => Number(c.headers['webhook-timestamp']));
    expect(new Set(stamps).size).to.equal(stamps.length);
    const ranSeconds = (Date.parse(view.finished_at) - Date.parse(view.started_at)) / 1000;
    expect(progress.length).to.be.at.most(Math.ceil(ranSeconds) + 1);
    expect(new Set(progress.map((c) => c.headers['webhook-id'])).size).to.equal(progress.length);
  });
});
