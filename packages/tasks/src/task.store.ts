import type { Redis } from 'ioredis';
import type { TaskRecord, TaskSpec, TaskStatus } from './task-record';

/** What a committed chunk adds to its task's progress. */
export interface ChunkCounts {
  succeeded: number;
  failed: number;
}

export type CommitOutcome =
  /** Counted now. */
  | 'committed'
  /** Counted now, and it was the task's last chunk: the task has finished. */
  | 'finished'
  /** Already counted by an earlier run of the same chunk: nothing changed. */
  | 'duplicate'
  /** No such task (expired or never created). */
  | 'missing';

export type CancelOutcome = 'cancelled' | 'already_cancelled' | 'finished' | 'missing';

// Every script runs atomically in Redis: that, and the per-task sets of committed chunks
// and listed pages, is what makes each image count exactly once whoever runs a chunk twice.

/** Marks a terminal status once every chunk is in; KEYS: task, committed; ARGV: now. */
const FINISH_IF_COMPLETE = `
local function finish_if_complete(task, committed, now)
  local status = redis.call('HGET', task, 'status')
  if status ~= 'queued' and status ~= 'running' then return 0 end
  if redis.call('HGET', task, 'listed') ~= '1' then return 0 end
  if redis.call('SCARD', committed) < tonumber(redis.call('HGET', task, 'chunks')) then return 0 end
  if redis.call('HEXISTS', task, 'started_at') == 0 then redis.call('HSET', task, 'started_at', now) end
  if tonumber(redis.call('HGET', task, 'total')) == 0 then
    redis.call('HSET', task, 'status', 'failed', 'finished_at', now,
      'error', cjson.encode({code = 'not_found', message = 'no objects under the source prefix'}))
    return 1
  end
  local final = 'succeeded'
  if tonumber(redis.call('HGET', task, 'failed')) > 0 then final = 'completed_with_errors' end
  redis.call('HSET', task, 'status', final, 'finished_at', now)
  return 1
end
`;

/** KEYS: task, committed; ARGV: chunk, succeeded, failed, now, ttl. */
const COMMIT_CHUNK = `${FINISH_IF_COMPLETE}
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
if redis.call('HGET', KEYS[1], 'listed') == '1' and tonumber(ARGV[1]) >= tonumber(redis.call('HGET', KEYS[1], 'chunks')) then
  return redis.error_reply('chunk ' .. ARGV[1] .. ' is beyond the task')
end
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 'duplicate' end
redis.call('EXPIRE', KEYS[2], ARGV[5])
local s, f = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('HINCRBY', KEYS[1], 'done', s + f)
redis.call('HINCRBY', KEYS[1], 'succeeded', s)
redis.call('HINCRBY', KEYS[1], 'failed', f)
if finish_if_complete(KEYS[1], KEYS[2], ARGV[4]) == 1 then return 'finished' end
return 'committed'
`;

/** KEYS: task, committed, pages; ARGV: page, images, chunks, last (0|1), now, ttl. */
const COMMIT_PAGE = `${FINISH_IF_COMPLETE}
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
if redis.call('SADD', KEYS[3], ARGV[1]) == 0 then return 'duplicate' end
redis.call('EXPIRE', KEYS[3], ARGV[6])
redis.call('HINCRBY', KEYS[1], 'total', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'chunks', ARGV[3])
if ARGV[4] == '1' then redis.call('HSET', KEYS[1], 'listed', '1') end
if finish_if_complete(KEYS[1], KEYS[2], ARGV[5]) == 1 then return 'finished' end
return 'committed'
`;

/** KEYS: task; ARGV: now. */
const MARK_RUNNING = `
if redis.call('HGET', KEYS[1], 'status') == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[1])
  return 1
end
return 0
`;

/** KEYS: task; ARGV: status (cancelled|failed), now, error JSON or ''. */
const END_TASK = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if status == ARGV[1] then return 'already' end
if status ~= 'queued' and status ~= 'running' then return 'finished' end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'finished_at', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[3]) end
return 'ended'
`;

interface TaskScripts {
  visionqCommitChunk(task: string, committed: string, chunk: number, succeeded: number, failed: number, now: string, ttl: number): Promise<string>;
  visionqCommitPage(task: string, committed: string, pages: string, page: number, images: number, chunks: number, last: string, now: string, ttl: number): Promise<string>;
  visionqMarkRunning(task: string, now: string): Promise<number>;
  visionqEndTask(task: string, status: string, now: string, error: string): Promise<string>;
}

/**
 * Task records in Redis: one hash per task plus, per task, the set of committed chunk
 * indices (and listed pages of a `source` task). Records expire `retentionSeconds`
 * after creation. The connection is the caller's; close() leaves it open.
 */
export class TaskStore {
  private readonly redis: Redis & TaskScripts;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly retentionSeconds: number,
  ) {
    this.redis = redis as Redis & TaskScripts;
    if (!('visionqCommitChunk' in redis)) {
      redis.defineCommand('visionqCommitChunk', { numberOfKeys: 2, lua: COMMIT_CHUNK });
      redis.defineCommand('visionqCommitPage', { numberOfKeys: 3, lua: COMMIT_PAGE });
      redis.defineCommand('visionqMarkRunning', { numberOfKeys: 1, lua: MARK_RUNNING });
      redis.defineCommand('visionqEndTask', { numberOfKeys: 1, lua: END_TASK });
    }
  }

  /**
   * Stores a new task. `images` and `chunks` are the totals when known at submit (a list
   * of images); a `source` task starts at 0 and grows as its pages are listed.
   */
  async create(spec: TaskSpec, known: { images: number; chunks: number } | null): Promise<TaskRecord> {
    const record: TaskRecord = {
      ...spec,
      status: 'queued',
      total: known?.images ?? 0,
      done: 0,
      succeeded: 0,
      failed: 0,
      chunks: known?.chunks ?? 0,
      listed: known !== null,
      createdAt: new Date().toISOString(),
    };
    const fields: Record<string, string> = {
      id: spec.id,
      kind: spec.kind,
      model: spec.model,
      top_k: String(spec.topK),
      output: spec.output,
      priority: String(spec.priority),
      status: record.status,
      total: String(record.total),
      done: '0',
      succeeded: '0',
      failed: '0',
      chunks: String(record.chunks),
      listed: record.listed ? '1' : '0',
      created_at: record.createdAt,
    };
    if (spec.metadata !== undefined) fields.metadata = JSON.stringify(spec.metadata);
    if (spec.source !== undefined) fields.source = spec.source;
    await this.redis.multi().hset(this.taskKey(spec.id), fields).expire(this.taskKey(spec.id), this.retentionSeconds).exec();
    return record;
  }

  async get(id: string): Promise<TaskRecord | null> {
    const h = await this.redis.hgetall(this.taskKey(id));
    if (!h.id) return null;
    return {
      id: h.id,
      kind: h.kind as TaskRecord['kind'],
      model: h.model!,
      topK: Number(h.top_k),
      output: h.output!,
      priority: Number(h.priority),
      metadata: h.metadata === undefined ? undefined : JSON.parse(h.metadata),
      source: h.source,
      status: h.status as TaskStatus,
      total: Number(h.total),
      done: Number(h.done),
      succeeded: Number(h.succeeded),
      failed: Number(h.failed),
      chunks: Number(h.chunks),
      listed: h.listed === '1',
      createdAt: h.created_at!,
      startedAt: h.started_at,
      finishedAt: h.finished_at,
      error: h.error === undefined ? undefined : JSON.parse(h.error),
    };
  }

  async status(id: string): Promise<TaskStatus | null> {
    return ((await this.redis.hget(this.taskKey(id), 'status')) as TaskStatus | null) ?? null;
  }

  /** `queued` → `running`, once. */
  async markRunning(id: string): Promise<void> {
    await this.redis.visionqMarkRunning(this.taskKey(id), now());
  }

  async isCommitted(id: string, chunk: number): Promise<boolean> {
    return (await this.redis.sismember(this.committedKey(id), String(chunk))) === 1;
  }

  /** Indices of the chunks counted so far, ascending. */
  async committedChunks(id: string): Promise<number[]> {
    return (await this.redis.smembers(this.committedKey(id))).map(Number).sort((a, b) => a - b);
  }

  /** Counts a chunk's images once, whatever number of times it ran; finishes the task after its last chunk. */
  async commitChunk(id: string, chunk: number, counts: ChunkCounts): Promise<CommitOutcome> {
    return (await this.redis.visionqCommitChunk(
      this.taskKey(id),
      this.committedKey(id),
      chunk,
      counts.succeeded,
      counts.failed,
      now(),
      this.retentionSeconds,
    )) as CommitOutcome;
  }

  /** Adds a listed page of a `source` task once; `last` when the listing has ended. */
  async commitPage(id: string, page: number, images: number, chunks: number, last: boolean): Promise<CommitOutcome> {
    return (await this.redis.visionqCommitPage(
      this.taskKey(id),
      this.committedKey(id),
      this.pagesKey(id),
      page,
      images,
      chunks,
      last ? '1' : '0',
      now(),
      this.retentionSeconds,
    )) as CommitOutcome;
  }

  /** No new chunk of the task starts after this; chunks already running still count. */
  async cancel(id: string): Promise<CancelOutcome> {
    const outcome = await this.redis.visionqEndTask(this.taskKey(id), 'cancelled', now(), '');
    return outcome === 'ended' ? 'cancelled' : outcome === 'already' ? 'already_cancelled' : (outcome as CancelOutcome);
  }

  /** Ends a task that cannot go on (a chunk ran out of retries, its source cannot be listed). */
  async fail(id: string, error: { code: string; message: string }): Promise<boolean> {
    return (await this.redis.visionqEndTask(this.taskKey(id), 'failed', now(), JSON.stringify(error))) === 'ended';
  }

  private taskKey(id: string): string {
    return `${this.prefix}:task:${id}`;
  }

  private committedKey(id: string): string {
    return `${this.prefix}:task:${id}:committed`;
  }

  private pagesKey(id: string): string {
    return `${this.prefix}:task:${id}:pages`;
  }
}

function now(): string {
  return new Date().toISOString();
}
