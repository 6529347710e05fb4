/**
 * Every Redis key visionq writes, under one prefix: deployments (and test runs) that
 * share a Redis stay apart. BullMQ's queues take `prefix` as their own.
 *
 * On a Redis Cluster the prefix is a hash tag, `{prefix}`: every key (ours and BullMQ's)
 * then lands in one slot, which the Lua scripts need (a task's scripts touch its hash,
 * events, sets, the ended stream, deadlines, backlog and in-flight counters at once) and
 * BullMQ's scripts too. So Cluster gives failover and room for other data, not sharding
 * of these keys.
 */
export class KeyNamespace {
  constructor(readonly prefix: string) {}

  /**
   * The namespace of REDIS_PREFIX on `redis`: wrapped into a hash tag on a Cluster, as it is
   * on one server (so existing deployments keep their key names). A prefix already in
   * braces is used as it is everywhere.
   */
  static on(redis: { readonly isCluster: boolean }, prefix: string): KeyNamespace {
    return new KeyNamespace(redis.isCluster && !/^\{.*\}$/.test(prefix) ? `{${prefix}}` : prefix);
  }

  /** A task's hash. */
  task(id: string): string {
    return `${this.prefix}:task:${id}`;
  }

  /** A task's event log (a stream), expiring with the task. */
  events(id: string): string {
    return `${this.prefix}:task:${id}:events`;
  }

  /** Indices of a task's committed chunks. */
  committed(id: string): string {
    return `${this.prefix}:task:${id}:committed`;
  }

  /** A task's chunks that used up their attempts: index → their job and why (JSON), until a retry takes them. */
  failedChunks(id: string): string {
    return `${this.prefix}:task:${id}:failed_chunks`;
  }

  /** A task's chunks a retry has queued again and that have not yet committed or failed: index → the same entry. */
  retrying(id: string): string {
    return `${this.prefix}:task:${id}:retrying`;
  }

  /** A task's committed chunks that have failed images: index → how many (what `failed_images` retries run again). */
  chunkFailures(id: string): string {
    return `${this.prefix}:task:${id}:chunk_failures`;
  }

  /** A task's chunks whose part a retry rewrote: index → the round of the part readers use. */
  partVersions(id: string): string {
    return `${this.prefix}:task:${id}:part_versions`;
  }

  /** Indices of a `source` task's listed pages. */
  pages(id: string): string {
    return `${this.prefix}:task:${id}:pages`;
  }

  /** One stream of every task's ending, for consumers that act on endings (callbacks). */
  ended(): string {
    return `${this.prefix}:tasks:ended`;
  }

  /** One stream of progress of the tasks whose callback asked for it (`events: ["progress"]`). */
  progress(): string {
    return `${this.prefix}:tasks:progress`;
  }

  /** Unfinished tasks by deadline (a sorted set, scored in ms since the epoch). */
  deadlines(): string {
    return `${this.prefix}:tasks:deadlines`;
  }

  /** Images of a model's unfinished tasks not done yet: what an autoscaler scales its workers on. */
  backlog(model: string): string {
    return `${this.prefix}:model:${model}:backlog`;
  }

  /** A model's unfinished tasks, by creation (ms since the epoch). */
  unfinished(model: string): string {
    return `${this.prefix}:model:${model}:unfinished`;
  }

  /** A tenant's tasks by creation (ms since the epoch), for `GET /tasks`; entries of expired tasks are dropped as they are read. */
  tenantTasks(tenant: string): string {
    return `${this.prefix}:tenant:${tenant}:tasks`;
  }

  /** Images of a tenant's unfinished tasks. */
  inFlight(tenant: string): string {
    return `${this.prefix}:tenant:${tenant}:in_flight`;
  }

  idempotency(key: string): string {
    return `${this.prefix}:idempotency:${Buffer.from(key).toString('base64url')}`;
  }

  /** Live workers' heartbeats: a sorted set of their announcements, scored by when each expires. */
  workers(): string {
    return `${this.prefix}:workers`;
  }

  /** The stream a process's TaskEventHub blocks on besides its watched logs, so that a new watcher can wake it. */
  hubWake(hubId: string): string {
    return `${this.prefix}:events-hub:${hubId}`;
  }
}
