import type { Config } from '@visionq/config';
import type { Logger, WorkerMetrics } from '@visionq/observability';
import type { ObjectStore } from '@visionq/object-store';
import { ChunkProcessor, type ImageSource } from './chunk.processor';
import { DeadlineSweeper } from './deadline.sweeper';
import { IdempotencyStore } from './idempotency.store';
import { KeyNamespace } from './key.namespace';
import type { RedisConnection } from './redis.connection';
import { ResultStore } from './result.store';
import { SourceLister } from './source.lister';
import { TaskConsumer, type ConsumerOptions } from './task.consumer';
import { TaskEventHub } from './task.event-hub';
import { TaskEvents } from './task.events';
import { TaskQueue } from './task.queue';
import { TaskStore } from './task.store';
import { TaskSubmitter } from './task.submitter';
import { WorkerRegistry } from './worker.registry';

/** Every Redis-backed part of the task lifecycle, under one key namespace. */
export interface Tasks {
  readonly keys: KeyNamespace;
  readonly store: TaskStore;
  readonly events: TaskEvents;
  /** One read loop for every live watcher of this process (SSE); started by the first watcher. */
  readonly hub: TaskEventHub;
  readonly results: ResultStore;
  readonly queue: TaskQueue;
  readonly idempotency: IdempotencyStore;
  readonly submitter: TaskSubmitter;
  readonly workers: WorkerRegistry;
  /** Ends tasks past their deadline; each gateway and worker starts one. */
  readonly deadlines: DeadlineSweeper;
  /** A worker's side: its chunks run through `images`, its consumer takes the models' queues. */
  consumer(images: ImageSource, options: ConsumerOptions, logger: Logger, metrics: WorkerMetrics): TaskConsumer;
  /** Stops the deadline sweeper and closes the queues; the connection stays the caller's. Idempotent. */
  close(): Promise<void>;
}

export interface OpenTasksOptions {
  /** Where result parts are written and read, and `source` prefixes listed. */
  store: ObjectStore;
  logger: Logger;
  /** Errors of the queues' own connections (each reconnect attempt while Redis is down). */
  onError: (err: Error) => void;
}

/** Builds the task lifecycle's parts on `redis` (a server or a Cluster), configured by the `redis` and `tasks` slices. */
export function openTasks(redis: RedisConnection, config: Pick<Config, 'redis' | 'tasks'>, options: OpenTasksOptions): Tasks {
  const keys = KeyNamespace.on(redis, config.redis.prefix);
  const store = new TaskStore(redis, keys, config.tasks);
  const results = new ResultStore(options.store, store);
  const queue = new TaskQueue(redis, keys.prefix, config.tasks.chunkAttempts, options.onError);
  const idempotency = new IdempotencyStore(redis, keys, config.tasks.retentionSeconds);
  const deadlines = new DeadlineSweeper(store, options.logger);
  const hub = new TaskEventHub(redis, keys, options.logger);
  return {
    keys,
    store,
    events: new TaskEvents(redis, keys),
    hub,
    results,
    queue,
    idempotency,
    submitter: new TaskSubmitter(store, queue, idempotency, config.tasks.chunkSize),
    workers: new WorkerRegistry(redis, keys),
    deadlines,
    consumer(images, consumerOptions, logger, metrics) {
      const processor = new ChunkProcessor(store, results, images, logger, metrics);
      const lister = new SourceLister(options.store, store, queue, config.tasks, logger);
      return new TaskConsumer(redis, keys.prefix, store, processor, lister, consumerOptions, logger);
    },
    close: async () => {
      await hub.close();
      await deadlines.stop();
      await queue.close();
    },
  };
}
