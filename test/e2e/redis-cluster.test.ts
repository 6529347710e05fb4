import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis, type Cluster as RedisClusterClient } from 'ioredis';
import { chunkQueueName, connectRedis, KeyNamespace, predictQueueName, TaskEvents, type RedisConnection } from '@visionq/tasks';
import { bearer, createKey } from '../support/api-keys';
import { Cluster } from '../support/cluster';
import { until } from '../support/promises';
import { FASHION_DIR } from '../support/model-fixtures';
import { startRedisCluster, startRedisSentinel, type RedisClusterTopology, type RedisSentinelTopology } from '../support/redis-cluster';
import { readEvents } from '../support/sse';
import { startWebhookReceiver } from '../support/webhook-receiver';

const CHUNK_SIZE = 10;
const MODEL = 'fashion-vgg@1';
const POLL_MS = 100;
const WAIT_MS = 90_000;

/** Polls `check` until it returns a value; fails after WAIT_MS with `what`. */
const eventually = <T>(what: string, check: () => Promise<T | undefined>) => until(what, check, WAIT_MS, POLL_MS);

/** Puts the committed Fashion-MNIST images into the cluster's local store; their URIs, in order. */
async function putFashion(cluster: Cluster, folder: string, count: number): Promise<string[]> {
  const files = (await readdir(FASHION_DIR)).filter((f) => f.endsWith('.png')).sort();
  return Promise.all(Array.from({ length: count }, async (_, i) => cluster.putLocal(`${folder}/${String(i).padStart(4, '0')}.png`, await readFile(join(FASHION_DIR, files[i % files.length]!)))));
}

/** Waits until the model's queues (under the deployment's namespace on `redis`) hold no job waiting, delayed or running. */
async function queuesSettled(redis: RedisConnection, prefix: string): Promise<void> {
  const queues = [chunkQueueName(MODEL), predictQueueName(MODEL)].map((name) => new Queue(name, { connection: redis, prefix }));
  try {
    await eventually('the queues to settle', async () => {
      const counts = await Promise.all(queues.map((q) => q.getJobCounts('wait', 'prioritized', 'delayed', 'active', 'waiting-children')));
      return counts.every((c) => Object.values(c).every((n) => n === 0)) ? true : undefined;
    });
  } finally {
    await Promise.all(queues.map((q) => q.close()));
  }
}

describe('Redis Cluster: a gateway and a worker on three masters (whole processes)', function () {
  this.timeout(180_000);
  const bucket = `vq-rcluster-${randomBytes(4).toString('hex')}`;
  let topology: RedisClusterTopology;
  let cluster: Cluster;
  let redis: RedisConnection;
  let keysDir: string;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  let hook: string;
  const key: Record<string, string> = {};
  let auth: Record<string, string>;

  before(async () => {
    topology = await startRedisCluster();
    keysDir = await mkdtemp(join(tmpdir(), 'vq-rcluster-keys-'));
    const keysFile = join(keysDir, 'keys.json');
    // The first line is the key; the second, the secret that signs the tenant's callbacks.
    key.main = createKey(keysFile, '--tenant', 'main', '--webhook-secret').split('\n')[0]!;
    key.daily = createKey(keysFile, '--tenant', 'daily', '--images-per-day', '3');
    auth = bearer(key.main);
    receiver = await startWebhookReceiver(() => 204);
    hook = receiver.url;
    cluster = await Cluster.start({
      bucket,
      workers: 1,
      env: {
        REDIS_URL: topology.url,
        API_KEYS_FILE: keysFile,
        CHUNK_SIZE: String(CHUNK_SIZE),
        WORKER_CONCURRENCY: '1',
        CALLBACK_ALLOWED_HOSTS: '127.0.0.1',
        CALLBACK_BACKOFF_MS: '100',
      },
    });
    redis = await connectRedis(topology.url, { failFast: false, onError: () => undefined });
  });

  after(async () => {
    await redis?.quit();
    await cluster?.stop();
    receiver?.close();
    await topology?.stop();
    if (keysDir) await rm(keysDir, { recursive: true, force: true });
  });

  it('runs a batch task of real images end to end: SSE progress per chunk, exact counts, results, a callback', async () => {
    const images = await putFashion(cluster, 'batch', 60);
    const submit = await cluster.request('POST', '/batch_predict', { images, top_k: 1, callback_url: `${hook}?task=batch` }, auth);
    expect(submit.status, JSON.stringify(submit.body)).to.equal(202);
    const id = submit.body.task_id as string;

    const { events } = await readEvents(`${cluster.url}/tasks/${id}/events`, auth);
    const views = events.map((e) => JSON.parse(e.data));
    expect(events.at(-1)!.event).to.equal('ended');
    expect(views.at(-1)).to.deep.include({ task_id: id, status: 'succeeded', progress: { total: 60, done: 60, succeeded: 60, failed: 0 } });
    // The log on the Cluster: created, running, one progress per chunk (each chunk once), ended.
    const log = await new TaskEvents(redis, KeyNamespace.on(redis, cluster.prefix)).replay(id);
    expect(events.map((e) => e.id)).to.deep.equal(log.map((e) => e.id));
    expect(log.filter((e) => e.chunk !== undefined).map((e) => e.chunk).sort((a, b) => a! - b!)).to.deep.equal([0, 1, 2, 3, 4, 5]);
    expect(log.map((e) => e.type)).to.deep.equal(['created', 'running', ...Array(6).fill('progress'), 'ended']);

    const page = await cluster.request('GET', `/tasks/${id}/results?limit=1000`, undefined, auth);
    expect(page.body.results.map((r: any) => r.image)).to.deep.equal(images);
    expect(page.body.results.every((r: any) => r.predictions?.length === 1)).to.equal(true);
    expect(page.body.next_cursor).to.equal(null);

    const delivered = await eventually('the callback', async () => receiver.received.find((c) => c.task === 'batch'));
    expect(JSON.parse(delivered.body)).to.deep.include({ task_id: id, status: 'succeeded' });
  });

  it('keeps every key of the deployment, its own and BullMQ\'s, in the one slot of its hash tag', async () => {
    const cluster_ = redis as RedisClusterClient;
    const slot = (await cluster_.cluster('KEYSLOT', `{${cluster.prefix}}`)) as number;
    const counts = await Promise.all(cluster_.nodes('master').map(async (node) => ({ total: await node.dbsize(), inSlot: (await node.cluster('COUNTKEYSINSLOT', slot)) as number })));
    const inSlot = counts.reduce((n, c) => n + c.inSlot, 0);
    expect(inSlot, 'task records, event logs and queues exist').to.be.greaterThan(0);
    expect(counts.reduce((n, c) => n + c.total, 0)).to.equal(inSlot);
  });

  it('answers ready with the worker seen through its heartbeat', async () => {
    const ready = await cluster.request('GET', '/readyz', undefined, auth);
    expect(ready.status, JSON.stringify(ready.body)).to.equal(200);
    expect(ready.body.checks).to.deep.include({ redis: 'ok', workers: '1 live' });
  });

  it('cancels a running task: it stops, and what was counted stays readable', async () => {
    const images = await putFashion(cluster, 'cancel', 300);
    const submit = await cluster.request('POST', '/batch_predict', { images, top_k: 1 }, auth);
    const id = submit.body.task_id as string;
    await eventually('a first chunk', async () => ((await cluster.request('GET', `/tasks/${id}`, undefined, auth)).body.progress.done > 0 ? true : undefined));
    const cancel = await cluster.request('DELETE', `/tasks/${id}`, undefined, auth);
    expect(cancel.status, JSON.stringify(cancel.body)).to.equal(200);
    expect(cancel.body.status).to.equal('cancelled');
    expect((await cluster.request('DELETE', `/tasks/${id}`, undefined, auth)).status).to.equal(409);

    await queuesSettled(redis, KeyNamespace.on(redis, cluster.prefix).prefix);
    const task = (await cluster.request('GET', `/tasks/${id}`, undefined, auth)).body;
    expect(task.status).to.equal('cancelled');
    expect(task.progress.done).to.be.within(CHUNK_SIZE, 300 - CHUNK_SIZE);
    const lines = (await cluster.request('GET', `/tasks/${id}/results`, undefined, { ...auth, accept: 'application/x-ndjson' })).body as string;
    expect(lines.trim().split('\n')).to.have.length(task.progress.done);
  });

  it('replays an idempotent resubmit and refuses the key for another body', async () => {
    const images = await putFashion(cluster, 'idem', 2);
    const headers = { ...auth, 'idempotency-key': `cluster-${randomBytes(4).toString('hex')}` };
    const first = await cluster.request('POST', '/batch_predict', { images }, headers);
    const again = await cluster.request('POST', '/batch_predict', { images }, headers);
    expect(first.status).to.equal(202);
    expect(again.status).to.equal(202);
    expect(again.body.task_id).to.equal(first.body.task_id);
    expect(again.headers.get('idempotent-replayed')).to.equal('true');
    const other = await cluster.request('POST', '/batch_predict', { images: images.slice(0, 1) }, headers);
    expect(other.status).to.equal(409);
    expect(other.body.error.code).to.equal('conflict');
    expect((await cluster.waitForTask(first.body.task_id, WAIT_MS, auth)).progress).to.deep.equal({ total: 2, done: 2, succeeded: 2, failed: 0 });
  });

  it('holds a tenant to its images per day (rate-limiter-flexible on the Cluster)', async () => {
    const images = await putFashion(cluster, 'daily', 2);
    expect((await cluster.request('POST', '/batch_predict', { images }, bearer(key.daily!))).status).to.equal(202);
    const over = await cluster.request('POST', '/batch_predict', { images }, bearer(key.daily!));
    expect(over.status).to.equal(429);
    expect(over.body.error.code).to.equal('rate_limited');
  });

  // Last: it takes the Cluster down (its data with it).
  it('answers 503 at once while the whole Cluster is down and takes work again when it is back', async () => {
    const images = await putFashion(cluster, 'outage', 1);
    await topology.kill();
    const refused = await cluster.request('POST', '/batch_predict', { images }, auth);
    expect(refused.status, JSON.stringify(refused.body)).to.equal(503);
    expect(refused.body.error.code).to.equal('unavailable');
    expect((await cluster.request('GET', '/readyz', undefined, auth)).status).to.equal(503);
    await topology.restart();
    const accepted = await eventually('a submit accepted', async () => {
      const reply = await cluster.request('POST', '/batch_predict', { images }, auth);
      return reply.status === 202 ? reply : undefined;
    });
    expect((await cluster.waitForTask(accepted.body.task_id, WAIT_MS, auth)).progress).to.deep.equal({ total: 1, done: 1, succeeded: 1, failed: 0 });
  });
});

describe('Redis Sentinel: a gateway and a worker on a master found through a Sentinel (whole processes)', function () {
  this.timeout(120_000);
  const bucket = `vq-rsentinel-${randomBytes(4).toString('hex')}`;
  let topology: RedisSentinelTopology;
  let cluster: Cluster;

  before(async () => {
    topology = await startRedisSentinel();
    cluster = await Cluster.start({ bucket, workers: 1, env: { REDIS_URL: topology.url, CHUNK_SIZE: String(CHUNK_SIZE) } });
  });

  after(async () => {
    await cluster?.stop();
    await topology?.stop();
  });

  it('runs a task end to end, its records on the master the Sentinel names', async () => {
    const images = await putFashion(cluster, 'batch', 25);
    const submit = await cluster.request('POST', '/batch_predict', { images, top_k: 1 });
    expect(submit.status, JSON.stringify(submit.body)).to.equal(202);
    const task = await cluster.waitForTask(submit.body.task_id, WAIT_MS);
    expect(task.status).to.equal('succeeded');
    expect(task.progress).to.deep.equal({ total: 25, done: 25, succeeded: 25, failed: 0 });
    expect(task.results.map((r: any) => r.image)).to.deep.equal(images);
    const master = new Redis({ host: '127.0.0.1', port: topology.masterPort });
    try {
      // On one server the prefix is used as it is: no hash tag.
      expect(await master.hget(`${cluster.prefix}:task:${submit.body.task_id}`, 'status')).to.equal('succeeded');
    } finally {
      master.disconnect();
    }
    expect((await cluster.request('GET', '/readyz')).body.checks).to.deep.include({ redis: 'ok', workers: '1 live' });
  });
});
