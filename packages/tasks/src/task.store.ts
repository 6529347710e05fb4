import type { RedisConnection } from './redis.connection';
import type { Config } from '@visionq/config';
import { ErrorCode, VisionqError, type TaskStatus } from '@visionq/api';
import type { KeyNamespace } from './key.namespace';
import type { CallbackRecord, TaskRecord, TaskSpec } from './task.record';

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

/** What a refusal for images in flight tells the client to wait: tasks end at their own pace, so a guess. */
const IN_FLIGHT_RETRY_AFTER_S = 5;

export type TaskStoreLimits = Pick<Config['tasks'], 'retentionSeconds' | 'eventsMaxLen' | 'endedEventsMaxLen'>;

// Every script runs atomically in Redis: that, and the per-task sets of committed chunks
// and listed pages, is what makes each image count exactly once whoever runs a chunk
// twice. Each change appends its event in the same script, so an event exists if and
// only if its change happened.
//
// Common to every script: KEYS[1] task, KEYS[2] its events, KEYS[3] the ended stream;
// ARGV[1] now, ARGV[2] events kept per task, ARGV[3] entries kept in the ended stream.
const PRELUDE = `
local task, events, ended = KEYS[1], KEYS[2], KEYS[3]
local now, maxlen, ended_maxlen = ARGV[1], ARGV[2], ARGV[3]

-- The model's backlog: images of its unfinished tasks not done yet (waiting or running).
local function adjust_backlog(delta)
  local backlog = redis.call('HGET', task, 'backlog_key')
  if backlog and delta ~= 0 and redis.call('INCRBY', backlog, delta) <= 0 then redis.call('DEL', backlog) end
end

local function is_live()
  local status = redis.call('HGET', task, 'status')
  return status == 'queued' or status == 'running'
end

local function emit(kind, extra_name, extra_value)
  local h = redis.call('HMGET', task, 'id', 'status', 'total', 'done', 'succeeded', 'failed', 'error')
  local fields = {'type', kind, 'status', h[2], 'total', h[3], 'done', h[4], 'succeeded', h[5], 'failed', h[6], 'at', now}
  if extra_name then table.insert(fields, extra_name); table.insert(fields, extra_value) end
  if kind == 'ended' and h[7] then table.insert(fields, 'error'); table.insert(fields, h[7]) end
  redis.call('XADD', events, 'MAXLEN', maxlen, '*', unpack(fields))
  local ttl = redis.call('PTTL', task)
  if ttl > 0 then redis.call('PEXPIRE', events, ttl) end
  if kind == 'ended' then
    redis.call('XADD', ended, 'MAXLEN', '~', ended_maxlen, '*', 'task_id', h[1], 'status', h[2], 'at', now)
    -- The task's images no longer count against its tenant's images in flight.
    local in_flight = redis.call('HGET', task, 'in_flight_key')
    if in_flight and redis.call('DECRBY', in_flight, h[3]) <= 0 then redis.call('DEL', in_flight) end
    local deadlines = redis.call('HGET', task, 'deadlines_key')
    if deadlines then redis.call('ZREM', deadlines, h[1]) end
    -- What was never done leaves its model's backlog with it.
    adjust_backlog(tonumber(h[4]) - tonumber(h[3]))
    local unfinished = redis.call('HGET', task, 'unfinished_key')
    if unfinished then redis.call('ZREM', unfinished, h[1]) end
  end
end

-- Adds images a task has just come to know of to its tenant's images in flight.
local function count_in_flight(images, ttl)
  local in_flight = redis.call('HGET', task, 'in_flight_key')
  if in_flight then
    redis.call('INCRBY', in_flight, images)
    redis.call('EXPIRE', in_flight, ttl)
  end
end

-- Marks a terminal status once every chunk is in.
local function finish_if_complete(committed)
  local status = redis.call('HGET', task, 'status')
  if status ~= 'queued' and status ~= 'running' then return 0 end
  if redis.call('HGET', task, 'listed') ~= '1' then return 0 end
  if redis.call('SCARD', committed) < tonumber(redis.call('HGET', task, 'chunks')) then return 0 end
  if redis.call('HEXISTS', task, 'started_at') == 0 then redis.call('HSET', task, 'started_at', now) end
  if tonumber(redis.call('HGET', task, 'total')) == 0 then
    redis.call('HSET', task, 'status', 'failed', 'finished_at', now,
      'error', cjson.encode({code = 'not_found', message = 'no objects under the source prefix'}))
  else
    local final = 'succeeded'
    if tonumber(redis.call('HGET', task, 'failed')) > 0 then final = 'completed_with_errors' end
    redis.call('HSET', task, 'status', final, 'finished_at', now)
  end
  emit('ended')
  return 1
end
`;

/**
 * KEYS[4..7]: the tenant's images in flight, the deadlines, the model's backlog and its
 * unfinished tasks by age; ARGV[4..7]: ttl, the task's
 * images, the most its tenant may have in flight (0: no limit), its deadline in ms since
 * the epoch (0: none); ARGV[8..]: the hash's field/value pairs. 0 when over the limit.
 */
const CREATE = `${PRELUDE}
local images, most, deadline = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
if most > 0 and images > 0 and tonumber(redis.call('GET', KEYS[4]) or '0') + images > most then return 0 end
redis.call('HSET', task, unpack(ARGV, 8))
redis.call('HSET', task, 'in_flight_key', KEYS[4])
if deadline > 0 then
  redis.call('HSET', task, 'deadlines_key', KEYS[5])
  redis.call('ZADD', KEYS[5], deadline, redis.call('HGET', task, 'id'))
end
redis.call('HSET', task, 'backlog_key', KEYS[6], 'unfinished_key', KEYS[7])
local clock = redis.call('TIME')
redis.call('ZADD', KEYS[7], tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000), redis.call('HGET', task, 'id'))
redis.call('EXPIRE', task, ARGV[4])
count_in_flight(images, ARGV[4])
adjust_backlog(images)
emit('created')
return 1
`;

/** KEYS[4]: committed; ARGV[4..7]: chunk, succeeded, failed, ttl. */
const COMMIT_CHUNK = `${PRELUDE}
if redis.call('EXISTS', task) == 0 then return 'missing' end
if redis.call('HGET', task, 'listed') == '1' and tonumber(ARGV[4]) >= tonumber(redis.call('HGET', task, 'chunks')) then
  return redis.error_reply('chunk ' .. ARGV[4] .. ' is beyond the task')
end
if redis.call('SADD', KEYS[4], ARGV[4]) == 0 then return 'duplicate' end
redis.call('EXPIRE', KEYS[4], ARGV[7])
local s, f = tonumber(ARGV[5]), tonumber(ARGV[6])
-- A chunk of an ended task still counts as done, but its images left the backlog at the end.
if is_live() then adjust_backlog(-(s + f)) end
redis.call('HINCRBY', task, 'done', s + f)
redis.call('HINCRBY', task, 'succeeded', s)
redis.call('HINCRBY', task, 'failed', f)
emit('progress', 'chunk', ARGV[4])
if finish_if_complete(KEYS[4]) == 1 then return 'finished' end
return 'committed'
`;

/** KEYS[4..5]: committed, pages; ARGV[4..8]: page, images, chunks, last (0|1), ttl. */
const COMMIT_PAGE = `${PRELUDE}
if redis.call('EXISTS', task) == 0 then return 'missing' end
if redis.call('SADD', KEYS[5], ARGV[4]) == 0 then return 'duplicate' end
redis.call('EXPIRE', KEYS[5], ARGV[8])
redis.call('HINCRBY', task, 'total', ARGV[5])
count_in_flight(tonumber(ARGV[5]), ARGV[8])
if is_live() then adjust_backlog(tonumber(ARGV[5])) end
redis.call('HINCRBY', task, 'chunks', ARGV[6])
if ARGV[7] == '1' then redis.call('HSET', task, 'listed', '1') end
emit('progress', 'page', ARGV[4])
if finish_if_complete(KEYS[4]) == 1 then return 'finished' end
return 'committed'
`;

/** KEYS[1]: task; ARGV: field, value. Sets it on a task that still exists (never revives an expired one). */
const SET_IF_EXISTS = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`;

const MARK_RUNNING = `${PRELUDE}
if redis.call('HGET', task, 'status') ~= 'queued' then return 0 end
redis.call('HSET', task, 'status', 'running', 'started_at', now)
emit('running')
return 1
`;

/** ARGV[4..5]: status (cancelled|failed), error JSON or ''. */
const END_TASK = `${PRELUDE}
local status = redis.call('HGET', task, 'status')
if not status then return 'missing' end
if status == ARGV[4] then return 'already' end
if status ~= 'queued' and status ~= 'running' then return 'finished' end
redis.call('HSET', task, 'status', ARGV[4], 'finished_at', now)
if ARGV[5] ~= '' then redis.call('HSET', task, 'error', ARGV[5]) end
emit('ended')
return 'ended'
`;

type Common = [task: string, events: string, ended: string, now: string, maxLen: number, endedMaxLen: number];

interface TaskScripts {
  visionqCreate(
    ...args: [task: string, events: string, ended: string, inFlight: string, deadlines: string, backlog: string, unfinished: string, now: string, maxLen: number, endedMaxLen: number, ttl: number, images: number, most: number, deadline: number, ...fields: string[]]
  ): Promise<number>;
  visionqCommitChunk(...args: [task: string, events: string, ended: string, committed: string, now: string, maxLen: number, endedMaxLen: number, chunk: number, succeeded: number, failed: number, ttl: number]): Promise<string>;
  visionqCommitPage(
    ...args: [task: string, events: string, ended: string, committed: string, pages: string, now: string, maxLen: number, endedMaxLen: number, page: number, images: number, chunks: number, last: string, ttl: number]
  ): Promise<string>;
  visionqMarkRunning(...args: Common): Promise<number>;
  visionqSetIfExists(task: string, field: string, value: string): Promise<number>;
  visionqEndTask(...args: [...Common, status: string, error: string]): Promise<string>;
}

/**
 * Task records in Redis: one hash per task plus, per task, the set of committed chunk
 * indices (and listed pages of a `source` task) and the event log. Records expire
 * `retentionSeconds` after creation, their event logs with them. The connection is the
 * caller's.
 */
export class TaskStore {
  private readonly redis: RedisConnection & TaskScripts;

  constructor(
    redis: RedisConnection,
    private readonly keys: KeyNamespace,
    private readonly limits: TaskStoreLimits,
  ) {
    this.redis = redis as RedisConnection & TaskScripts;
    if (!('visionqCommitChunk' in redis)) {
      redis.defineCommand('visionqCreate', { numberOfKeys: 7, lua: CREATE });
      redis.defineCommand('visionqCommitChunk', { numberOfKeys: 4, lua: COMMIT_CHUNK });
      redis.defineCommand('visionqCommitPage', { numberOfKeys: 5, lua: COMMIT_PAGE });
      redis.defineCommand('visionqMarkRunning', { numberOfKeys: 3, lua: MARK_RUNNING });
      redis.defineCommand('visionqEndTask', { numberOfKeys: 3, lua: END_TASK });
      redis.defineCommand('visionqSetIfExists', { numberOfKeys: 1, lua: SET_IF_EXISTS });
    }
  }

  /**
   * Stores a new task. `images` and `chunks` are the totals when known at submit (a list
   * of images); a `source` task starts at 0 and grows as its pages are listed. Its images
   * count against its tenant's images in flight until it ends; past `maxInFlight` (when
   * given) nothing is stored and this throws 429 `rate_limited`.
   */
  async create(spec: TaskSpec, known: { images: number; chunks: number } | null, maxInFlight?: number): Promise<TaskRecord> {
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
      tenant: spec.tenant,
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
    if (spec.deadline !== undefined) fields.deadline = spec.deadline;
    if (spec.callbackUrl !== undefined) fields.callback_url = spec.callbackUrl;
    const [task, events, ended, now, maxLen, endedMaxLen] = this.common(spec.id, record.createdAt);
    const created = await this.redis.visionqCreate(
      task,
      events,
      ended,
      this.keys.inFlight(spec.tenant),
      this.keys.deadlines(),
      this.keys.backlog(spec.model),
      this.keys.unfinished(spec.model),
      now,
      maxLen,
      endedMaxLen,
      this.limits.retentionSeconds,
      record.total,
      maxInFlight ?? 0,
      spec.deadline === undefined ? 0 : Date.parse(spec.deadline),
      ...Object.entries(fields).flat(),
    );
    if (created === 0) {
      throw new VisionqError(ErrorCode.RateLimited, `tenant "${spec.tenant}" would have more than ${maxInFlight} images in flight with ${record.total} more; retry when some of its tasks end`, [{ message: 'over quota' }], {
        retryAfterSeconds: IN_FLIGHT_RETRY_AFTER_S,
      });
    }
    return record;
  }

  async get(id: string): Promise<TaskRecord | null> {
    const h = await this.redis.hgetall(this.keys.task(id));
    if (!h.id) return null;
    return {
      id: h.id,
      tenant: h.tenant ?? 'default',
      kind: h.kind as TaskRecord['kind'],
      model: h.model!,
      topK: Number(h.top_k),
      output: h.output!,
      priority: Number(h.priority),
      metadata: h.metadata === undefined ? undefined : JSON.parse(h.metadata),
      source: h.source,
      deadline: h.deadline,
      callbackUrl: h.callback_url,
      callback: h.callback === undefined ? undefined : JSON.parse(h.callback),
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
    return ((await this.redis.hget(this.keys.task(id), 'status')) as TaskStatus | null) ?? null;
  }

  /** `queued` → `running`, once. */
  async markRunning(id: string): Promise<void> {
    await this.redis.visionqMarkRunning(...this.common(id));
  }

  async isCommitted(id: string, chunk: number): Promise<boolean> {
    return (await this.redis.sismember(this.keys.committed(id), String(chunk))) === 1;
  }

  /**
   * Adds one delivery attempt of the task's callback (keeping the newest `keep`) and its
   * state. Only the one delivery job of the task calls this, so read-modify-write is safe.
   */
  async recordCallback(id: string, attempt: CallbackRecord['attempts'][number], state: CallbackRecord['state'], keep: number): Promise<void> {
    const previous = await this.redis.hget(this.keys.task(id), 'callback');
    const record: CallbackRecord = previous ? JSON.parse(previous) : { state: 'pending', attempts: [] };
    record.state = state;
    record.attempts = [...record.attempts, attempt].slice(-keep);
    await this.redis.visionqSetIfExists(this.keys.task(id), 'callback', JSON.stringify(record));
  }

  /**
   * A model's backlog: images of its unfinished tasks not done yet (waiting, delayed or
   * running), and when its oldest unfinished task was created (ms since the epoch; null: none).
   */
  async backlog(model: string): Promise<{ images: number; oldestMs: number | null }> {
    const [images, oldest] = await Promise.all([this.redis.get(this.keys.backlog(model)), this.redis.zrange(this.keys.unfinished(model), '0', '0', 'WITHSCORES')]);
    return { images: Math.max(0, Number(images ?? 0)), oldestMs: oldest.length === 2 ? Number(oldest[1]) : null };
  }

  /** Ids of tasks whose deadline has passed by `now` (ms since the epoch) and that have not ended, oldest first. */
  async pastDeadline(now: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.deadlines(), '-inf', now, 'LIMIT', 0, limit);
  }

  /** Drops a task from the deadlines (one that expired or ended without its record saying so). */
  async forgetDeadline(id: string): Promise<void> {
    await this.redis.zrem(this.keys.deadlines(), id);
  }

  /** Indices of the chunks counted so far, ascending. */
  async committedChunks(id: string): Promise<number[]> {
    return (await this.redis.smembers(this.keys.committed(id))).map(Number).sort((a, b) => a - b);
  }

  /** Counts a chunk's images once, whatever number of times it ran; finishes the task after its last chunk. */
  async commitChunk(id: string, chunk: number, counts: ChunkCounts): Promise<CommitOutcome> {
    const [task, events, ended, now, maxLen, endedMaxLen] = this.common(id);
    return (await this.redis.visionqCommitChunk(task, events, ended, this.keys.committed(id), now, maxLen, endedMaxLen, chunk, counts.succeeded, counts.failed, this.limits.retentionSeconds)) as CommitOutcome;
  }

  /** Adds a listed page of a `source` task once; `last` when the listing has ended. */
  async commitPage(id: string, page: number, images: number, chunks: number, last: boolean): Promise<CommitOutcome> {
    const [task, events, ended, now, maxLen, endedMaxLen] = this.common(id);
    return (await this.redis.visionqCommitPage(
      task,
      events,
      ended,
      this.keys.committed(id),
      this.keys.pages(id),
      now,
      maxLen,
      endedMaxLen,
      page,
      images,
      chunks,
      last ? '1' : '0',
      this.limits.retentionSeconds,
    )) as CommitOutcome;
  }

  /** No new chunk of the task starts after this; chunks already running still count. */
  async cancel(id: string): Promise<CancelOutcome> {
    const outcome = await this.redis.visionqEndTask(...this.common(id), 'cancelled', '');
    return outcome === 'ended' ? 'cancelled' : outcome === 'already' ? 'already_cancelled' : (outcome as CancelOutcome);
  }

  /** Ends a task that cannot go on (a job out of retries, one no retry can cure, one that could not be queued). */
  async fail(id: string, error: { code: string; message: string }): Promise<boolean> {
    return (await this.redis.visionqEndTask(...this.common(id), 'failed', JSON.stringify(error))) === 'ended';
  }

  private common(id: string, now = new Date().toISOString()): Common {
    return [this.keys.task(id), this.keys.events(id), this.keys.ended(), now, this.limits.eventsMaxLen, this.limits.endedEventsMaxLen];
  }
}
