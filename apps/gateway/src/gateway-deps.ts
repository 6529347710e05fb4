import type { Redis } from 'ioredis';
import type { Config } from '@visionq/config';
import type { BucketPolicy, ObjectStore } from '@visionq/object-store';
import type { GatewayMetrics, Logger } from '@visionq/observability';
import type { IdempotencyStore, ResultStore, TaskStore, TaskSubmitter, WorkerRegistry } from '@visionq/tasks';
import type { ModelCatalog } from './model-catalog';

/** Everything the routes use, built once in main.ts (tests build their own). */
export interface GatewayDeps {
  config: Config;
  logger: Logger;
  redis: Redis;
  store: ObjectStore;
  buckets: BucketPolicy;
  catalog: ModelCatalog;
  tasks: TaskStore;
  submitter: TaskSubmitter;
  results: ResultStore;
  idempotency: IdempotencyStore;
  workers: WorkerRegistry;
  metrics: GatewayMetrics;
}
