import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Cluster as RedisClusterClient } from 'ioredis';
import type { TaskEvent } from '@visionq/api';
import { createLogger } from '@visionq/observability';
import {
  chunkQueueName,
  connectRedis,
  IdempotencyStore,
  KeyNamespace,
  TaskEventHub,
  TaskEvents,
  TaskQueue,
  TaskStore,
  WorkerRegistry,
  type RedisConnection,
  type TaskSpec,
} from '@visionq/tasks';
import { startRedisCluster, type RedisClusterTopology } from '../support/redis-cluster';

const LIMITS = { retentionSeconds: 600, eventsMaxLen: 1000, endedEventsMaxLen: 1000 };
const MODEL = 'vgg16';

function taskSpec(): TaskSpec {
  return { id: randomUUID(), tenant: 'acme', kind: 'batch', model: MODEL, topK: 5, output: 's3://results/out/', priority: 5, deadline: new Date(Date.now() + 60_000).toISOString() };
}

describe('@visionq/tasks on a three-master Redis Cluster', function () {
  this.timeout(60_000);
  let topology: RedisClusterTopology;
  let redis: RedisConnection;
  let keys: KeyNamespace;
  let store: TaskStore;

  before(async () => {
    topology = await startRedisCluster();
    redis = await connectRedis(topology.url, { failFast: false, onError: () => undefined });
    keys = KeyNamespace.on(redis, `vq-test-${randomUUID().slice(0, 8)}`);
    store = new TaskStore(redis, keys, LIMITS);
  });

  after(async () => {
    await redis?.quit();
    await topology?.stop();
  });

  it('connects as a Cluster and puts the namespace under one hash tag', () => {
    expect(redis.isCluster).to.equal(true);
    expect(keys.prefix).to.match(/^\{vq-test-[0-9a-f]{8}\}$/);
  });

  it("runs the task store's scripts: create, a chunk committed twice counts once, the last one finishes the task", async () => {
    const spec = taskSpec();
    await store.create(spec, { images: 5, chunks: 2 }, 100);
    expect(await store.backlog(MODEL)).to.deep.include({ images: 5 });
    await store.markRunning(spec.id);
    expect(await store.commitChunk(spec.id, 0, { succeeded: 3, failed: 0 })).to.equal('committed');
    expect(await store.commitChunk(spec.id, 0, { succeeded: 3, failed: 0 })).to.equal('duplicate');
    expect(await store.commitChunk(spec.id, 1, { succeeded: 1, failed: 1 })).to.equal('finished');
    const task = await store.get(spec.id);
    expect(task).to.deep.include({ status: 'completed_with_errors', total: 5, done: 5, succeeded: 4, failed: 1 });
    expect(await store.committedChunks(spec.id)).to.deep.equal([0, 1]);
    // The ending's side effects, on keys named in the task's hash: backlog, deadlines, in flight.
    expect(await store.backlog(MODEL)).to.deep.equal({ images: 0, oldestMs: null });
    expect(await store.pastDeadline(Date.now() + 120_000, 10)).to.not.include(spec.id);
    const log = await new TaskEvents(redis, keys).replay(spec.id);
    expect(log.map((e) => `${e.type}${e.chunk ?? ''}`)).to.deep.equal(['created', 'running', 'progress0', 'progress1', 'ended']);
    expect(await store.cancel(spec.id)).to.equal('finished');
  });

  it('claims idempotency keys and replays them', async () => {
    const idempotency = new IdempotencyStore(redis, keys, 600);
    const key = `k-${randomUUID()}`;
    expect(await idempotency.claim(key, 'hash-a', 'task-1')).to.deep.equal({ outcome: 'new' });
    expect(await idempotency.claim(key, 'hash-a', 'task-2')).to.deep.equal({ outcome: 'replay', taskId: 'task-1' });
    expect(await idempotency.claim(key, 'hash-b', 'task-3')).to.deep.equal({ outcome: 'conflict', taskId: 'task-1' });
    await idempotency.release(key, 'task-1');
    expect(await idempotency.claim(key, 'hash-b', 'task-4')).to.deep.equal({ outcome: 'new' });
  });

  it('lists live workers from their heartbeats and drops a stopped one', async () => {
    const registry = new WorkerRegistry(redis, keys);
    const info = { id: 'w-1', hostname: 'h', pid: 1, models: [MODEL], providers: { [MODEL]: 'cpu' }, startedAt: new Date().toISOString() };
    await registry.start(info, (err) => expect.fail(String(err)));
    try {
      expect(await registry.live()).to.deep.equal([info]);
    } finally {
      await registry.stop(info.id);
    }
    expect(await registry.live()).to.deep.equal([]);
  });

  it('follows two tasks live from one read loop (the second watcher wakes it through its wake stream)', async () => {
    const hub = new TaskEventHub(redis, keys, createLogger({ silent: true }));
    const [a, b] = [taskSpec(), taskSpec()];
    await store.create(a, { images: 1, chunks: 1 });
    await store.create(b, { images: 1, chunks: 1 });
    const seen: Record<string, string[]> = { [a.id]: [], [b.id]: [] };
    const ended = (id: string) =>
      new Promise<void>((resolve) =>
        hub.watch(id, undefined, (event: TaskEvent) => {
          seen[id]!.push(event.type);
          if (event.type === 'ended') resolve();
        }),
      );
    try {
      const aEnded = ended(a.id);
      const bEnded = ended(b.id);
      await store.commitChunk(b.id, 0, { succeeded: 1, failed: 0 });
      await store.commitChunk(a.id, 0, { succeeded: 1, failed: 0 });
      await Promise.all([aEnded, bEnded]);
    } finally {
      await hub.close();
    }
    expect(seen).to.deep.equal({ [a.id]: ['created', 'progress', 'ended'], [b.id]: ['created', 'progress', 'ended'] });
  });

  it('queues chunk jobs with BullMQ under the namespace, once each', async () => {
    const queue = new TaskQueue(redis, keys.prefix, 3, (err) => expect.fail(err.message));
    const reader = new Queue(chunkQueueName(MODEL), { connection: redis, prefix: keys.prefix });
    try {
      const chunks = [0, 1].map((index) => ({ taskId: 'task-q', model: MODEL, index, images: [`s3://in/${index}.png`], topK: 1, output: 's3://out/' }));
      await queue.addChunks(chunks, 5);
      await queue.addChunks(chunks, 5);
      expect(await reader.getJobCountByTypes('prioritized', 'wait')).to.equal(2);
      const slot = (await (redis as RedisClusterClient).cluster('KEYSLOT', keys.prefix)) as number;
      expect(await (redis as RedisClusterClient).cluster('KEYSLOT', `${keys.prefix}:${chunkQueueName(MODEL)}:meta`)).to.equal(slot);
    } finally {
      await reader.close();
      await queue.close();
    }
  });
});
