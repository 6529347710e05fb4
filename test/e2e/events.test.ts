import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Redis } from 'ioredis';
import { KeyNamespace, TaskEvents } from '@visionq/tasks';
import { Cluster } from '../support/cluster';
import { ANKLE_BOOT_PNG } from '../support/model-fixtures';
import { readEvents } from '../support/sse';

const IMAGES = 300;
const CHUNK_SIZE = 10;

describe('live progress: GET /tasks/:id/events (whole processes)', function () {
  this.timeout(120_000);
  const bucket = `vq-events-${randomBytes(4).toString('hex')}`;
  let cluster: Cluster;
  let redis: Redis;
  const images = Array.from({ length: IMAGES }, (_, i) => `s3://${bucket}/in/${String(i).padStart(4, '0')}.png`);

  before(async () => {
    cluster = await Cluster.start({ bucket, workers: 1, env: { CHUNK_SIZE: String(CHUNK_SIZE), WORKER_CONCURRENCY: '1', EVENTS_HEARTBEAT_MS: '200' } });
    const png = await readFile(ANKLE_BOOT_PNG);
    await Promise.all(images.map((_, i) => cluster.putLocal(`in/${String(i).padStart(4, '0')}.png`, png)));
    redis = new Redis('redis://127.0.0.1:6379');
  });

  after(async () => {
    redis?.disconnect();
    await cluster?.stop();
  });

  it('streams every progress event and ended, resumes after a disconnect with Last-Event-ID, then closes', async () => {
    const submit = await cluster.request('POST', '/batch_predict', { images });
    const url = `${cluster.url}/tasks/${submit.body.task_id}/events`;
    // Disconnect after a few events, mid-task.
    const first = await readEvents(url, {}, (_e, all) => all.length === 5);
    expect(first.contentType).to.equal('text/event-stream; charset=utf-8');
    const rest = await readEvents(url, { 'last-event-id': first.events.at(-1)!.id! });
    const seen = [...first.events, ...rest.events];
    // Exactly the task's event log, each entry once, in order.
    const log = await new TaskEvents(redis, new KeyNamespace(cluster.prefix)).replay(submit.body.task_id);
    expect(seen.map((e) => e.id)).to.deep.equal(log.map((e) => e.id));
    expect(seen.map((e) => e.event)).to.deep.equal(log.map((e) => (e.type === 'ended' ? 'ended' : 'progress')));
    const views = seen.map((e) => JSON.parse(e.data));
    expect(views.filter((v) => v.status === 'running').length).to.be.at.least(IMAGES / CHUNK_SIZE);
    expect(views.map((v) => v.progress.done)).to.deep.equal([...views.map((v) => v.progress.done)].sort((a, b) => a - b));
    expect(views.at(-1)).to.deep.include({ task_id: submit.body.task_id, status: 'succeeded', progress: { total: IMAGES, done: IMAGES, succeeded: IMAGES, failed: 0 } });
    expect(views.at(-1).finished_at).to.be.a('string');
    expect(rest.comments, 'heartbeats while it ran').to.be.greaterThan(0);
    // Following an ended task replays its log and closes at once; after its last id, nothing but the close.
    const again = await readEvents(url, {});
    expect(again.events.map((e) => e.id)).to.deep.equal(log.map((e) => e.id));
    expect((await readEvents(url, { 'last-event-id': log.at(-1)!.id })).events).to.deep.equal([]);
  });

  it('serves many watchers of a task from one Redis read loop per gateway', async () => {
    const submit = await cluster.request('POST', '/batch_predict', { images: images.slice(0, 100) });
    const url = `${cluster.url}/tasks/${submit.body.task_id}/events`;
    const watchers = Array.from({ length: 12 }, () => readEvents(url, {}));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const clients = ((await redis.client('LIST')) as string).split('\n').filter((l) => l.includes(` name=${cluster.prefix}:events `));
    const all = await Promise.all(watchers);
    expect(clients, '12 watchers, one gateway: one read loop').to.have.length(1);
    for (const { events } of all) {
      expect(events.at(-1)!.event).to.equal('ended');
      expect(events.map((e) => e.id)).to.deep.equal(all[0]!.events.map((e) => e.id));
    }
  });

  it('refuses a Last-Event-ID it did not send, and an unknown task', async () => {
    const submit = await cluster.request('POST', '/batch_predict', { images: images.slice(0, 1) });
    expect((await cluster.request('GET', `/tasks/${submit.body.task_id}/events`, undefined, { 'last-event-id': 'nope' })).status).to.equal(400);
    expect((await cluster.request('GET', '/tasks/00000000-0000-0000-0000-000000000000/events')).status).to.equal(404);
  });
});
