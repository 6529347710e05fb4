/**
 * The task lifecycle: submission, chunks, listing, retries, cancel, failure and events.
 *
 * Exactly once. A task's images are split into chunks; a chunk is the unit of work and of
 * retry. A worker runs a chunk in three steps, in this order, and only this order:
 *   1. write the chunk's part (its result lines) to the object store, whole;
 *   2. commit the chunk in Redis (TaskStore.commitChunk): its counts are added only if its
 *      index is new to the task's committed set, atomically, with its `progress` event;
 *   3. readers (ResultStore) read the parts of committed chunks only.
 * So a chunk that runs twice (a worker killed mid-chunk, a retry) writes the same part
 * twice and counts once, and every image is read exactly once. A rerun of a committed
 * chunk's failed images (a retry with `failed_images`) writes a part of its own round, and
 * its commit (TaskStore.recommitChunk) swaps it in and moves the counts, once per round.
 *
 * Who moves a task to which status (each move atomic, with its event, in task.store.ts):
 *   created  → `queued`                        TaskSubmitter (the gateway)
 *   `queued` → `running`                       ChunkProcessor / SourceLister, on the first claim
 *   → `succeeded` | `completed_with_errors`    the commit of the last chunk (or last page)
 *   → `failed`                                 the same, when a chunk (or the listing) used up its
 *                                              attempts: TaskConsumer keeps such a job on its task
 *                                              (queue.jobs.ts says which errors retry) and the others
 *                                              run on; TaskSubmitter: jobs that could not be enqueued;
 *                                              DeadlineSweeper: the task's deadline passed (`timeout`)
 *   → `cancelled`                              TaskStore.cancel (DELETE /tasks/:id)
 *   `failed` | `completed_with_errors` → `running`   TaskSubmitter.retry (POST /tasks/:id/retry): the
 *                                              kept jobs (and failed images) run again as the next
 *                                              round; only a task whose every chunk committed or was
 *                                              kept can be retried
 * No status moves once terminal but by a retry; chunks of an ended task are skipped, and a
 * running one stops within a cancel poll.
 */
export { ChunkProcessor } from './chunk.processor';
export type { ChunkOutcome, ImageSource } from './chunk.processor';
export { DeadlineSweeper } from './deadline.sweeper';
export { IdempotencyStore } from './idempotency.store';
export type { IdempotencyClaim } from './idempotency.store';
export { KeyNamespace } from './key.namespace';
export { chunkJobId, chunkQueueName, predictQueueName } from './queue.jobs';
export type { ChunkJobData, ListJobData } from './queue.jobs';
export { connectRedis, duplicateConnection, isRedisConnectionError, redisUnavailable } from './redis.connection';
export type { RedisConnection, RedisConnectOptions } from './redis.connection';
export { ResultStore } from './result.store';
export type { ResultPage } from './result.store';
export type { TaskConsumer } from './task.consumer';
export type { ConsumerOptions } from './task.consumer';
export { TaskEventHub } from './task.event-hub';
export { TaskEvents } from './task.events';
export { openTasks } from './task.factory';
export type { OpenTasksOptions, Tasks } from './task.factory';
export { TaskQueue } from './task.queue';
export type { CallbackRecord, TaskKind, TaskRecord, TaskSpec } from './task.record';
export { TaskStore } from './task.store';
export type { CancelOutcome, ChunkCounts, CommitOutcome, TaskStoreLimits } from './task.store';
export { TaskSubmitter } from './task.submitter';
export type { IdempotentRequest, SubmitOptions, Submitted, TaskInput } from './task.submitter';
export { taskView } from './task.view';
export { WorkerRegistry } from './worker.registry';
export type { WorkerInfo } from './worker.registry';
