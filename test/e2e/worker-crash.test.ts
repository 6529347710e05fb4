import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { TaskEvent } from '@visionq/api';
import type { S3ObjectStore } from '@visionq/object-store';
import { createLogger } from '@visionq/observability';
import { chunkJobId, chunkQueueName, KeyNamespace, TaskEventHub, TaskEvents } from '@visionq/tasks';
import { Cluster, type ServiceProcess } from '../support/cluster';
import { FASHION_DIR } from '../support/model-fixtures';
import { createBucket, motoStore, startMotoServer, type MotoServer } from '../support/moto-server';

const IMAGES = 500;
const CHUNK_SIZE = 10;

/** Waits until `service` has logged a finished chunk of `taskId`, so it is mid-task. */
async function midTask(service: ServiceProcess, taskId: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (Cluster.lines(service, 'chunk done').some((l) => l.task_id === taskId)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${service.name} never finished a chunk of ${taskId}`);
}

async function expectEveryImageOnce(cluster: Cluster, taskId: string, images: string[]): Promise<void> {
  const task = await cluster.waitForTask(taskId);
  expect(task.status).to.equal('succeeded');
  expect(task.progress).to.deep.equal({ total: IMAGES, done: IMAGES, succeeded: IMAGES, failed: 0 });
  const results = await cluster.allResults(taskId);
  expect(results.map((r) => r.image)).to.deep.equal(images);
}

describe('worker replicas that die or stop mid-task (whole processes)', function () {
  this.timeout(180_000);
  const bucket = `vq-crash-${randomBytes(4).toString('hex')}`;
  let moto: MotoServer;
  let store: S3ObjectStore;
  let images: string[];

  before(async () => {
    moto = await startMotoServer();
    await createBucket(moto, bucket);
    store = motoStore(moto);
    const files = (await readdir(FASHION_DIR)).filter((f) => f.endsWith('.png')).sort();
    const bytes = await Promise.all(files.map((f) => readFile(join(FASHION_DIR, f))));
    images = Array.from({ length: IMAGES }, (_, i) => `s3://${bucket}/crash/${String(i).padStart(4, '0')}.png`);
    for (let i = 0; i < IMAGES; i += 25) await Promise.all(images.slice(i, i + 25).map((uri, j) => store.put(uri, bytes[(i + j) % bytes.length]!)));
  });

  after(async () => {
    store?.close();
    await moto?.stop();
  });

  const start = () =>
    Cluster.start({
      moto,
      bucket,
      workers: 2,
      // Small chunks, and a short lock so a dead worker's chunks come back within seconds.
      env: { CHUNK_SIZE: String(CHUNK_SIZE), LOCK_DURATION_MS: '2000', STALLED_INTERVAL_MS: '1000' },
    });

  /** A live follower of the task's event log from its first entry, as a gateway's SSE watcher would be. */
  async function follow(cluster: Cluster, redis: Redis, taskId: string): Promise<TaskEvent[]> {
    const hub = new TaskEventHub(redis, new KeyNamespace(cluster.prefix), createLogger({ silent: true }));
    const seen: TaskEvent[] = [];
    try {
      await new Promise<void>((resolve) =>
        hub.watch(taskId, undefined, (event) => {
          seen.push(event);
          if (event.type === 'ended') resolve();
        }),
      );
    } finally {
      await hub.close();
    }
    return seen;
  }

  /** Each chunk's progress exactly once, counts that only grow, one `ended` last, the same log live and replayed. */
  function expectEachChunkOnce(live: TaskEvent[], replayed: TaskEvent[]): void {
    expect(live.map((e) => e.id)).to.deep.equal(replayed.map((e) => e.id));
    expect(live[0]!.type).to.equal('created');
    expect(live.filter((e) => e.type === 'running')).to.have.length(1);
    const progress = live.filter((e) => e.type === 'progress');
    expect(progress.map((e) => e.chunk).sort((a, b) => a! - b!)).to.deep.equal(Array.from({ length: IMAGES / CHUNK_SIZE }, (_, i) => i));
    progress.forEach((e, i) => expect(e.progress.done).to.equal((i + 1) * CHUNK_SIZE));
    expect(live.filter((e) => e.type === 'ended')).to.have.length(1);
    expect(live.at(-1)).to.deep.include({ type: 'ended', status: 'succeeded', progress: { total: IMAGES, done: IMAGES, succeeded: IMAGES, failed: 0 } });
  }

  it('completes a task with every image exactly once when a worker is killed with SIGKILL, its events each chunk once', async () => {
    const cluster = await start();
    const redis = new Redis('redis://127.0.0.1:6379');
    try {
      const submit = await cluster.request('POST', '/batch_predict', { images });
      const live = follow(cluster, redis, submit.body.task_id);
      const victim = cluster.workers[0]!;
      await midTask(victim, submit.body.task_id);
      victim.child.kill('SIGKILL');
      expect(await victim.exited).to.equal(null); // killed, not exited
      await expectEveryImageOnce(cluster, submit.body.task_id, images);
      // The victim held chunks mid-run: BullMQ took them over as stalled and they ran again elsewhere.
      const queue = new Queue(chunkQueueName('fashion-vgg@1'), { connection: redis, prefix: cluster.prefix });
      const jobs = await Promise.all(Array.from({ length: IMAGES / CHUNK_SIZE }, (_, i) => queue.getJob(chunkJobId(submit.body.task_id, i))));
      await queue.close();
      expect(jobs.filter((job) => (job?.stalledCounter ?? 0) > 0).length, 'chunks taken over from the killed worker').to.be.greaterThan(0);
      expectEachChunkOnce(await live, await new TaskEvents(redis, new KeyNamespace(cluster.prefix)).replay(submit.body.task_id));
    } finally {
      redis.disconnect();
      await cluster.stop();
    }
  });

  it('on SIGTERM a worker finishes its chunks, takes no more and exits 0; the task completes', async () => {
    const cluster = await start();
    try {
      const submit = await cluster.request('POST', '/batch_predict', { images });
      const leaving = cluster.workers[0]!;
      await midTask(leaving, submit.body.task_id);
      leaving.child.kill('SIGTERM');
      expect(await leaving.exited).to.equal(0);
      const stoppedAt = leaving.logs.findIndex((l) => l.message === 'stopping: no new chunks, finishing those in flight');
      expect(stoppedAt).to.be.greaterThan(-1);
      expect(Cluster.lines(leaving, 'stopped')).to.have.length(1);
      await expectEveryImageOnce(cluster, submit.body.task_id, images);
      // After its stop began it only finished chunks it already held (its concurrency, 4).
      const after = leaving.logs.slice(stoppedAt).filter((l) => l.message === 'chunk done');
      expect(after.length).to.be.at.most(4);
    } finally {
      await cluster.stop();
    }
  });
});
