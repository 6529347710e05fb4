import type { RedisConnection } from './redis.connection';
import type { Config } from '@visionq/config';
import { ErrorCode, VisionqError, type FailedChunkView, type TaskStatus } from '@visionq/api';
import type { KeyNamespace } from './key.namespace';
import type { ChunkJobData, ListJobData } from './queue.jobs';
import type { CallbackRecord, FailedChunk, FailedListing, JobFailure, TaskRecord, TaskSpec } from './task.record';

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

/** `recorded`: kept (the task goes on, or had already ended); `finished`: it was the task's last one out; `committed`: the chunk had committed after all. */
export type FailOutcome = 'recorded' | 'finished' | 'duplicate' | 'committed' | 'missing';

export type RetryOutcome =
  /** Queue these again, as retry `round` (`again`: a retry under way, answered once more). */
  | { outcome: 'retried' | 'again'; round: number; entries: RetryEntry[]; listing: ListJobData | null }
  /** Ended, but with nothing a retry runs again (no failed chunk), or not with every chunk kept (cancelled, past its deadline). */
  | { outcome: 'nothing' | 'unaccounted'; status: TaskStatus }
  /** Still running with no retry under way, or no such task. */
  | { outcome: 'running' | 'missing' };

/** What a retry runs again: a failed chunk (with its job), or a committed chunk's failed images. */
export type RetryEntry = FailedChunk | { kind: 'images'; index: number; images: number };

/** Tasks one `GET /tasks` call looks at, whatever its filter finds; and how many it reads from Redis at a time. */
const LIST_SCAN = 1000;
const LIST_PAGE = 100;

function encodeListCursor(at: { id: string; ms: number }): string {
  return Buffer.from(`${at.ms}.${at.id}`).toString('base64url');
}

function decodeListCursor(cursor: string): { id: string; ms: number } {
  const match = /^(\d{1,15})\.([0-9a-f-]{36})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) throw new VisionqError(ErrorCode.InvalidArgument, 'cursor is not one this API returned', [{ field: 'cursor', message: 'invalid cursor' }]);
  return { ms: Number(match[1]), id: match[2]! };
}

/** Failed chunks a task view lists (the count is in its error). */
const FAILED_CHUNKS_SHOWN = 100;

/** What a refusal for images in flight tells the client to wait: tasks end at their own pace, so a guess. */
const IN_FLIGHT_RETRY_AFTER_S = 5;

export type TaskStoreLimits = Pick<Config['tasks'], 'retentionSeconds' | 'eventsMaxLen' | 'endedEventsMaxLen'>;

// Every script runs atomically in Redis: that, and the per-task sets of committed chunks
// and listed pages, is what makes each image count exactly once whoever runs a chunk
// twice. Each change appends its event in the same script, so an event exists if and
// only if its change happened.
//
// Common to every script: KEYS[1] task, KEYS[2] its events, KEYS[3] the ended stream,
// KEYS[4] its committed chunks, KEYS[5] its failed chunks, KEYS[6] its chunks being
// retried, KEYS[7] its committed chunks' failed images, KEYS[8] its rewritten parts' rounds; ARGV[1] now, ARGV[2] events kept per task, ARGV[3] entries kept in the ended stream.
//
// A task is accounted for once every chunk it knows has committed or failed (used up its
// attempts), its images are all known (listed, or its listing failed) and no retry of a
// chunk is under way: then it ends, `failed` if any chunk or the listing failed. A retry
// takes the failed ones (and, when asked, the failed images of committed chunks) back into work.
const PRELUDE = `
local task, events, ended, committed, failed_chunks, retrying = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local chunk_failures, versions = KEYS[7], KEYS[8]
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
  local h = redis.call('HMGET', task, 'id', 'status', 'total', 'done', 'succeeded', 'failed', 'error', 'lost', 'rechecking')
  local fields = {'type', kind, 'status', h[2], 'total', h[3], 'done', h[4], 'succeeded', h[5], 'failed', h[6], 'at', now}
  if extra_name then table.insert(fields, extra_name); table.insert(fields, extra_value) end
  if kind == 'ended' and h[7] then table.insert(fields, 'error'); table.insert(fields, h[7]) end
  redis.call('XADD', events, 'MAXLEN', maxlen, '*', unpack(fields))
  local ttl = redis.call('PTTL', task)
  if ttl > 0 then redis.call('PEXPIRE', events, ttl) end
  local progress = redis.call('HGET', task, 'progress_key')
  if progress and kind ~= 'created' and kind ~= 'ended' then
    redis.call('XADD', progress, 'MAXLEN', '~', ended_maxlen, '*', 'task_id', h[1], 'at', now)
  end
  if kind == 'ended' then
    redis.call('XADD', ended, 'MAXLEN', '~', ended_maxlen, '*', 'task_id', h[1], 'status', h[2], 'at', now, 'round', redis.call('HGET', task, 'retries') or '0')
    -- The task's images no longer count against its tenant's images in flight.
    local in_flight = redis.call('HGET', task, 'in_flight_key')
    local counted = tonumber(redis.call('HGET', task, 'in_flight') or h[3])
    redis.call('HSET', task, 'in_flight', 0)
    if in_flight and counted > 0 and redis.call('DECRBY', in_flight, counted) <= 0 then redis.call('DEL', in_flight) end
    local deadlines = redis.call('HGET', task, 'deadlines_key')
    if deadlines then redis.call('ZREM', deadlines, h[1]) end
    -- What was never done leaves its model's backlog with it (failed chunks' images left when they failed).
    adjust_backlog(tonumber(h[4]) + tonumber(h[8] or '0') - tonumber(h[3]) - tonumber(h[9] or '0'))
    redis.call('HSET', task, 'rechecking', 0)
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
    redis.call('HINCRBY', task, 'in_flight', images)
  end
end

-- Marks a terminal status once every chunk is accounted for.
local function finish_if_complete()
  if not is_live() then return 0 end
  local listing_failed = redis.call('HEXISTS', task, 'failed_listing') == 1
  if redis.call('HGET', task, 'listed') ~= '1' and not listing_failed then return 0 end
  local failures = redis.call('HLEN', failed_chunks)
  if redis.call('SCARD', committed) + failures < tonumber(redis.call('HGET', task, 'chunks')) then return 0 end
  if redis.call('HLEN', retrying) > 0 then return 0 end
  if redis.call('HEXISTS', task, 'started_at') == 0 then redis.call('HSET', task, 'started_at', now) end
  if listing_failed or failures > 0 then
    local first = cjson.decode(redis.call('HGET', task, 'failed_listing') or redis.call('HGET', task, 'first_failure'))
    local what = failures .. ' of ' .. redis.call('HGET', task, 'chunks') .. ' chunks'
    if listing_failed then what = 'the listing of page ' .. first.page end
    redis.call('HSET', task, 'status', 'failed', 'finished_at', now, 'error', cjson.encode({code = first.error.code,
      message = what .. ' failed after ' .. first.attempts .. ' attempts (' .. first.error.message .. '); POST /tasks/' .. redis.call('HGET', task, 'id') .. '/retry runs them again'}))
  elseif tonumber(redis.call('HGET', task, 'total')) == 0 then
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
 * KEYS[9..13]: the tenant's images in flight, the deadlines, the model's backlog and its
 * unfinished tasks by age, the tenant's tasks; ARGV[4..7]: ttl, the task's
 * images, the most its tenant may have in flight (0: no limit), its deadline in ms since
 * the epoch (0: none); ARGV[8..]: the hash's field/value pairs. 0 when over the limit.
 */
const CREATE = `${PRELUDE}
local images, most, deadline = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
if most > 0 and images > 0 and tonumber(redis.call('GET', KEYS[9]) or '0') + images > most then return 0 end
redis.call('HSET', task, unpack(ARGV, 8))
redis.call('HSET', task, 'in_flight_key', KEYS[9], 'in_flight', 0, 'retries', 0, 'lost', 0, 'rechecking', 0)
if deadline > 0 then
  redis.call('HSET', task, 'deadlines_key', KEYS[10])
  redis.call('ZADD', KEYS[10], deadline, redis.call('HGET', task, 'id'))
end
redis.call('HSET', task, 'backlog_key', KEYS[11], 'unfinished_key', KEYS[12])
local clock = redis.call('TIME')
local created = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZADD', KEYS[12], created, redis.call('HGET', task, 'id'))
redis.call('ZADD', KEYS[13], created, redis.call('HGET', task, 'id'))
redis.call('EXPIRE', KEYS[13], ARGV[4])
redis.call('EXPIRE', task, ARGV[4])
count_in_flight(images, ARGV[4])
adjust_backlog(images)
emit('created')
return 1
`;

/** ARGV[4..7]: chunk, succeeded, failed, ttl. */
const COMMIT_CHUNK = `${PRELUDE}
if redis.call('EXISTS', task) == 0 then return 'missing' end
if redis.call('HGET', task, 'listed') == '1' and tonumber(ARGV[4]) >= tonumber(redis.call('HGET', task, 'chunks')) then
  return redis.error_reply('chunk ' .. ARGV[4] .. ' is beyond the task')
end
if redis.call('SADD', committed, ARGV[4]) == 0 then return 'duplicate' end
redis.call('EXPIRE', committed, ARGV[7])
redis.call('HDEL', retrying, ARGV[4])
local s, f = tonumber(ARGV[5]), tonumber(ARGV[6])
-- A chunk of an ended task still counts as done, but its images left the backlog at the end.
if is_live() then adjust_backlog(-(s + f)) end
redis.call('HINCRBY', task, 'done', s + f)
redis.call('HINCRBY', task, 'succeeded', s)
redis.call('HINCRBY', task, 'failed', f)
if f > 0 then
  redis.call('HSET', chunk_failures, ARGV[4], f)
  redis.call('EXPIRE', chunk_failures, ARGV[7])
end
emit('progress', 'chunk', ARGV[4])
if finish_if_complete() == 1 then return 'finished' end
return 'committed'
`;

/** KEYS[9]: pages; ARGV[4..8]: page, images, chunks, last (0|1), ttl. */
const COMMIT_PAGE = `${PRELUDE}
if redis.call('EXISTS', task) == 0 then return 'missing' end
if redis.call('SADD', KEYS[9], ARGV[4]) == 0 then return 'duplicate' end
redis.call('EXPIRE', KEYS[9], ARGV[8])
redis.call('HDEL', task, 'retrying_listing')
redis.call('HINCRBY', task, 'total', ARGV[5])
count_in_flight(tonumber(ARGV[5]), ARGV[8])
if is_live() then adjust_backlog(tonumber(ARGV[5])) end
redis.call('HINCRBY', task, 'chunks', ARGV[6])
if ARGV[7] == '1' then redis.call('HSET', task, 'listed', '1') end
emit('progress', 'page', ARGV[4])
if finish_if_complete() == 1 then return 'finished' end
return 'committed'
`;

/**
 * A chunk that used up its attempts: kept with its job (for a retry) and why, its images
 * out of the backlog. ARGV[4..7]: chunk, entry JSON, its images, ttl.
 */
const FAIL_CHUNK = `${PRELUDE}
if redis.call('EXISTS', task) == 0 then return 'missing' end
if redis.call('SISMEMBER', committed, ARGV[4]) == 1 then
  -- A rerun of a committed chunk's failed images: they stay as they were, its retry is over.
  if redis.call('HDEL', retrying, ARGV[4]) == 1 and is_live() then
    local before = tonumber(redis.call('HGET', chunk_failures, ARGV[4]) or '0')
    redis.call('HINCRBY', task, 'rechecking', -before)
    adjust_backlog(-before)
    emit('progress', 'failed_chunk', ARGV[4])
    finish_if_complete()
  end
  return 'committed'
end
if redis.call('HSETNX', failed_chunks, ARGV[4], ARGV[5]) == 0 then return 'duplicate' end
redis.call('EXPIRE', failed_chunks, ARGV[7])
redis.call('HDEL', retrying, ARGV[4])
redis.call('HSETNX', task, 'first_failure', ARGV[5])
if not is_live() then return 'recorded' end
redis.call('HINCRBY', task, 'lost', ARGV[6])
adjust_backlog(-tonumber(ARGV[6]))
emit('progress', 'failed_chunk', ARGV[4])
if finish_if_complete() == 1 then return 'finished' end
return 'recorded'
`;

/** A `source` page whose listing used up its attempts: no image after it is known. ARGV[4..5]: page, entry JSON. */
const FAIL_LISTING = `${PRELUDE}
if redis.call('EXISTS', task) == 0 then return 'missing' end
if redis.call('HGET', task, 'listed') == '1' or redis.call('HSETNX', task, 'failed_listing', ARGV[5]) == 0 then return 'duplicate' end
redis.call('HDEL', task, 'retrying_listing')
if not is_live() then return 'recorded' end
emit('progress', 'failed_page', ARGV[4])
if finish_if_complete() == 1 then return 'finished' end
return 'recorded'
`;

/**
 * A committed chunk whose failed images a retry ran again: its new part (of retry
 * `round`) replaces the old for readers, and the images that now succeed move from
 * `failed` to `succeeded`, once. ARGV[4..7]: chunk, round, images still failed, ttl.
 */
const RECOMMIT_CHUNK = `${PRELUDE}
if redis.call('EXISTS', task) == 0 then return 'missing' end
if tonumber(redis.call('HGET', versions, ARGV[4]) or '0') >= tonumber(ARGV[5]) then return 'duplicate' end
redis.call('HSET', versions, ARGV[4], ARGV[5])
redis.call('EXPIRE', versions, ARGV[7])
local before, still = tonumber(redis.call('HGET', chunk_failures, ARGV[4]) or '0'), tonumber(ARGV[6])
redis.call('HINCRBY', task, 'succeeded', before - still)
redis.call('HINCRBY', task, 'failed', still - before)
if still > 0 then redis.call('HSET', chunk_failures, ARGV[4], still) else redis.call('HDEL', chunk_failures, ARGV[4]) end
if redis.call('HDEL', retrying, ARGV[4]) == 1 and is_live() then
  redis.call('HINCRBY', task, 'rechecking', -before)
  adjust_backlog(-before)
end
emit('progress', 'chunk', ARGV[4])
if finish_if_complete() == 1 then return 'finished' end
return 'committed'
`;

/**
 * Takes an ended task's failed chunks (and failed listing) back into work, and, when
 * asked, the failed images of its committed chunks: each goes into the retrying set, the
 * task is live again and counts what it will run in flight and in its model's backlog. A
 * task that ended for another reason (cancelled, past its deadline, never queued) has
 * chunks no one kept: it cannot be retried. While a retry is under way the same call
 * answers its entries again, so a client can repeat a retry whose jobs were not all queued.
 * ARGV[4..6]: ttl, the task's deadline in ms (0: none), failed images too (1|0).
 * Answers {outcome, round, entries…, listing entry or ''}; an entry is a failed chunk's, or
 * {kind = 'images', index, images} for a committed chunk's failed images.
 */
const RETRY = `${PRELUDE}
local status = redis.call('HGET', task, 'status')
if not status then return {'missing'} end
local function values(hash)
  local out = {}
  local flat = redis.call('HGETALL', hash)
  for i = 2, #flat, 2 do table.insert(out, flat[i]) end
  return out
end
if status == 'queued' or status == 'running' then
  local listing = redis.call('HGET', task, 'retrying_listing')
  if redis.call('HLEN', retrying) == 0 and not listing then return {'running'} end
  local out = {'again', redis.call('HGET', task, 'retries')}
  for _, e in ipairs(values(retrying)) do table.insert(out, e) end
  table.insert(out, listing or '')
  return out
end
local listing = redis.call('HGET', task, 'failed_listing')
local failures = redis.call('HLEN', failed_chunks)
local images = ARGV[6] == '1' and status ~= 'cancelled' and redis.call('HLEN', chunk_failures) > 0
if not images and (status ~= 'failed' or (failures == 0 and not listing)) then return {'nothing', status} end
if (redis.call('HGET', task, 'listed') ~= '1' and not listing) or redis.call('SCARD', committed) + failures < tonumber(redis.call('HGET', task, 'chunks')) then
  return {'unaccounted', status}
end
local ttl = tonumber(ARGV[4])
local round = redis.call('HINCRBY', task, 'retries', 1)
local out = {'retried', tostring(round)}
for _, e in ipairs(values(failed_chunks)) do table.insert(out, e) end
if failures > 0 then redis.call('RENAME', failed_chunks, retrying) end
local rechecking = 0
if images then
  local flat = redis.call('HGETALL', chunk_failures)
  for i = 1, #flat, 2 do
    local entry = cjson.encode({kind = 'images', index = tonumber(flat[i]), images = tonumber(flat[i + 1])})
    redis.call('HSET', retrying, flat[i], entry)
    table.insert(out, entry)
    rechecking = rechecking + tonumber(flat[i + 1])
  end
end
table.insert(out, listing or '')
redis.call('HDEL', task, 'failed_listing', 'first_failure', 'error', 'finished_at')
if listing then redis.call('HSET', task, 'retrying_listing', listing) end
redis.call('HSET', task, 'status', 'running', 'lost', 0, 'rechecking', rechecking)
local callback = redis.call('HGET', task, 'callback')
if callback then
  local record = cjson.decode(callback)
  record.state = 'pending'
  redis.call('HSET', task, 'callback', cjson.encode(record))
end
-- Kept for the retention from now on, every key of the task with it.
for _, key in ipairs({task, events, committed, retrying, chunk_failures, versions}) do redis.call('EXPIRE', key, ttl) end
local h = redis.call('HMGET', task, 'id', 'total', 'done', 'deadlines_key', 'unfinished_key')
local work = tonumber(h[2]) - tonumber(h[3]) + rechecking
count_in_flight(work, ttl)
adjust_backlog(work)
if h[4] and tonumber(ARGV[5]) > 0 then redis.call('ZADD', h[4], ARGV[5], h[1]) end
local clock = redis.call('TIME')
if h[5] then redis.call('ZADD', h[5], tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000), h[1]) end
emit('retried', 'round', tostring(round))
return out
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

type Keys = [task: string, events: string, ended: string, committed: string, failedChunks: string, retrying: string, chunkFailures: string, partVersions: string];
type Args = [now: string, maxLen: number, endedMaxLen: number];

interface TaskScripts {
  visionqCreate(...args: [...Keys, inFlight: string, deadlines: string, backlog: string, unfinished: string, tenantTasks: string, ...Args, ttl: number, images: number, most: number, deadline: number, ...fields: string[]]): Promise<number>;
  visionqCommitChunk(...args: [...Keys, ...Args, chunk: number, succeeded: number, failed: number, ttl: number]): Promise<string>;
  visionqCommitPage(...args: [...Keys, pages: string, ...Args, page: number, images: number, chunks: number, last: string, ttl: number]): Promise<string>;
  visionqFailChunk(...args: [...Keys, ...Args, chunk: number, entry: string, images: number, ttl: number]): Promise<string>;
  visionqFailListing(...args: [...Keys, ...Args, page: number, entry: string]): Promise<string>;
  visionqRetry(...args: [...Keys, ...Args, ttl: number, deadline: number, images: string]): Promise<string[]>;
  visionqRecommitChunk(...args: [...Keys, ...Args, chunk: number, round: number, stillFailed: number, ttl: number]): Promise<string>;
  visionqMarkRunning(...args: [...Keys, ...Args]): Promise<number>;
  visionqSetIfExists(task: string, field: string, value: string): Promise<number>;
  visionqEndTask(...args: [...Keys, ...Args, status: string, error: string]): Promise<string>;
}

/**
 * Task records in Redis: one hash per task plus, per task, the set of committed chunk
 * indices (and listed pages of a `source` task), its failed and retried chunks and the
 * event log. Records expire `retentionSeconds` after creation (or their last retry), their
 * event logs with them. The connection is the caller's.
 */
export class TaskStore {
  private readonly redis: RedisConnection & TaskScripts;

  constructor(
    redis: RedisConnection,
    private readonly keys: KeyNamespace,
    private readonly limits: TaskStoreLimits,
  ) {
    this.redis = redis as RedisConnection & TaskScripts;
    if (!('visionqRetry' in redis)) {
      redis.defineCommand('visionqCreate', { numberOfKeys: 13, lua: CREATE });
      redis.defineCommand('visionqCommitChunk', { numberOfKeys: 8, lua: COMMIT_CHUNK });
      redis.defineCommand('visionqRecommitChunk', { numberOfKeys: 8, lua: RECOMMIT_CHUNK });
      redis.defineCommand('visionqCommitPage', { numberOfKeys: 9, lua: COMMIT_PAGE });
      redis.defineCommand('visionqFailChunk', { numberOfKeys: 8, lua: FAIL_CHUNK });
      redis.defineCommand('visionqFailListing', { numberOfKeys: 8, lua: FAIL_LISTING });
      redis.defineCommand('visionqRetry', { numberOfKeys: 8, lua: RETRY });
      redis.defineCommand('visionqMarkRunning', { numberOfKeys: 8, lua: MARK_RUNNING });
      redis.defineCommand('visionqEndTask', { numberOfKeys: 8, lua: END_TASK });
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
      retries: 0,
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
    if (spec.requestId !== undefined) fields.request_id = spec.requestId;
    if (spec.callbackEvents !== undefined) fields.callback_events = spec.callbackEvents.join(',');
    // Its changes go to the progress stream too, which the callbacks read.
    if (spec.callbackEvents?.includes('progress')) fields.progress_key = this.keys.progress();
    const created = await this.redis.visionqCreate(
      ...this.keysOf(spec.id),
      this.keys.inFlight(spec.tenant),
      this.keys.deadlines(),
      this.keys.backlog(spec.model),
      this.keys.unfinished(spec.model),
      this.keys.tenantTasks(spec.tenant),
      ...this.args(record.createdAt),
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
    const [h, failedChunks] = await Promise.all([this.redis.hgetall(this.keys.task(id)), this.failedChunks(id)]);
    if (!h.id) return null;
    const failedListing = h.failed_listing === undefined ? undefined : (JSON.parse(h.failed_listing) as FailedListing);
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
      requestId: h.request_id,
      callbackEvents: h.callback_events === undefined ? undefined : (h.callback_events.split(',') as TaskSpec['callbackEvents']),
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
      retries: Number(h.retries ?? 0),
      ...(failedChunks.length > 0 ? { failedChunks } : {}),
      ...(failedListing ? { failedListing } : {}),
    };
  }

  /**
   * A tenant's tasks, newest first, `limit` at most, with `status` when given; and where to
   * go on (null: none left). At most LIST_SCAN tasks are looked at per call, so a filter
   * that matches few may answer fewer than `limit` with a cursor to go on from.
   */
  async list(tenant: string, options: { status?: TaskStatus; limit: number; cursor?: string }): Promise<{ tasks: TaskRecord[]; nextCursor: string | null }> {
    const key = this.keys.tenantTasks(tenant);
    const after = options.cursor === undefined ? null : decodeListCursor(options.cursor);
    const tasks: TaskRecord[] = [];
    let scanned = 0;
    let last = after;
    for (let offset = 0; scanned < LIST_SCAN && tasks.length < options.limit; ) {
      // Newest first, from the cursor's time on; of the cursor's own millisecond, only ids below it (ties come in reverse id order).
      const flat = await this.redis.zrevrangebyscore(key, last?.ms ?? '+inf', '-inf', 'WITHSCORES', 'LIMIT', offset, LIST_PAGE);
      if (flat.length === 0) return { tasks, nextCursor: null };
      offset += flat.length / 2;
      const entries: Array<{ id: string; ms: number }> = [];
      for (let i = 0; i < flat.length; i += 2) entries.push({ id: flat[i]!, ms: Number(flat[i + 1]) });
      const fresh = entries.filter((e) => !last || e.ms < last.ms || e.id < last.id);
      const records = await Promise.all(fresh.map((e) => this.get(e.id)));
      for (const [i, entry] of fresh.entries()) {
        scanned++;
        last = entry;
        const record = records[i];
        if (!record) await this.redis.zrem(key, entry.id); // expired
        else if (options.status === undefined || record.status === options.status) tasks.push(record);
        if (tasks.length === options.limit || scanned === LIST_SCAN) break;
      }
      if (fresh.length > 0) offset = 0; // the next call starts again from `last`
    }
    return { tasks, nextCursor: last ? encodeListCursor(last) : null };
  }

  async status(id: string): Promise<TaskStatus | null> {
    return ((await this.redis.hget(this.keys.task(id), 'status')) as TaskStatus | null) ?? null;
  }

  /** `queued` → `running`, once. */
  async markRunning(id: string): Promise<void> {
    await this.redis.visionqMarkRunning(...this.keysOf(id), ...this.args());
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

  /** When the task's last progress callback was sent (ms since the epoch; 0: never). */
  async progressSentAt(id: string): Promise<number> {
    return Number((await this.redis.hget(this.keys.task(id), 'progress_sent_at')) ?? 0);
  }

  async markProgressSent(id: string, at: number): Promise<void> {
    await this.redis.visionqSetIfExists(this.keys.task(id), 'progress_sent_at', String(at));
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
    return (await this.redis.visionqCommitChunk(...this.keysOf(id), ...this.args(), chunk, counts.succeeded, counts.failed, this.limits.retentionSeconds)) as CommitOutcome;
  }

  /** Adds a listed page of a `source` task once; `last` when the listing has ended. */
  async commitPage(id: string, page: number, images: number, chunks: number, last: boolean): Promise<CommitOutcome> {
    return (await this.redis.visionqCommitPage(...this.keysOf(id), this.keys.pages(id), ...this.args(), page, images, chunks, last ? '1' : '0', this.limits.retentionSeconds)) as CommitOutcome;
  }

  /**
   * Keeps a chunk that used up its attempts, with its job, for `POST /tasks/:id/retry`; the
   * task goes on, and ends `failed` once its other chunks are in.
   */
  async failChunk(id: string, failure: JobFailure, data: ChunkJobData): Promise<FailOutcome> {
    const entry: FailedChunk = { index: data.index, images: data.images.length, ...failure, data };
    return (await this.redis.visionqFailChunk(...this.keysOf(id), ...this.args(), data.index, JSON.stringify(entry), data.images.length, this.limits.retentionSeconds)) as FailOutcome;
  }

  /** Keeps a `source` page whose listing used up its attempts; the task ends `failed` once the chunks listed before it are in. */
  async failListing(id: string, failure: JobFailure, data: ListJobData): Promise<FailOutcome> {
    const entry: FailedListing = { page: data.page, ...failure, data };
    return (await this.redis.visionqFailListing(...this.keysOf(id), ...this.args(), data.page, JSON.stringify(entry))) as FailOutcome;
  }

  /**
   * Takes an ended task's failed chunks (and failed listing), and with `failedImages` its
   * committed chunks' failed images, back into work: what this answers is to be queued
   * again, as retry `round`. While that retry is under way, the same call answers the same
   * work again (queuing it twice adds nothing).
   */
  async retry(id: string, deadlineMs: number, failedImages: boolean): Promise<RetryOutcome> {
    const [outcome, second, ...rest] = await this.redis.visionqRetry(...this.keysOf(id), ...this.args(), this.limits.retentionSeconds, deadlineMs, failedImages ? '1' : '0');
    if (outcome === 'missing' || outcome === 'running') return { outcome };
    if (outcome === 'nothing' || outcome === 'unaccounted') return { outcome, status: second as TaskStatus };
    const listing = rest.pop()!;
    return {
      outcome: outcome === 'again' ? 'again' : 'retried',
      round: Number(second),
      entries: rest.map((e) => JSON.parse(e) as RetryEntry),
      listing: listing === '' ? null : (JSON.parse(listing) as FailedListing).data,
    };
  }

  /**
   * Swaps in a committed chunk's part rewritten by retry `round` (its failed images run
   * again) and moves the images that now succeed from `failed` to `succeeded`, once.
   */
  async recommitChunk(id: string, chunk: number, round: number, stillFailed: number): Promise<CommitOutcome> {
    return (await this.redis.visionqRecommitChunk(...this.keysOf(id), ...this.args(), chunk, round, stillFailed, this.limits.retentionSeconds)) as CommitOutcome;
  }

  /** The round of each chunk's part that a retry rewrote (the others are round 0). */
  async partVersions(id: string): Promise<Map<number, number>> {
    const flat = await this.redis.hgetall(this.keys.partVersions(id));
    return new Map(Object.entries(flat).map(([chunk, round]) => [Number(chunk), Number(round)]));
  }

  /** No new chunk of the task starts after this; chunks already running still count. */
  async cancel(id: string): Promise<CancelOutcome> {
    const outcome = await this.redis.visionqEndTask(...this.keysOf(id), ...this.args(), 'cancelled', '');
    return outcome === 'ended' ? 'cancelled' : outcome === 'already' ? 'already_cancelled' : (outcome as CancelOutcome);
  }

  /** Ends a live task that cannot go on as a whole (past its deadline, its jobs could not be queued). */
  async fail(id: string, error: { code: string; message: string }): Promise<boolean> {
    return (await this.redis.visionqEndTask(...this.keysOf(id), ...this.args(), 'failed', JSON.stringify(error))) === 'ended';
  }

  /** The failed chunks a task view shows: at most FAILED_CHUNKS_SHOWN, lowest indices of those read, without their jobs. */
  private async failedChunks(id: string): Promise<FailedChunkView[]> {
    const key = this.keys.failedChunks(id);
    const count = await this.redis.hlen(key);
    if (count === 0) return [];
    const values = count <= FAILED_CHUNKS_SHOWN ? await this.redis.hvals(key) : ((await this.redis.hscan(key, '0', 'COUNT', FAILED_CHUNKS_SHOWN))[1].filter((_, i) => i % 2 === 1));
    return values
      .map((v) => {
        const { data: _data, ...view } = JSON.parse(v) as FailedChunk;
        return view;
      })
      .sort((a, b) => a.index - b.index)
      .slice(0, FAILED_CHUNKS_SHOWN);
  }

  private keysOf(id: string): Keys {
    return [
      this.keys.task(id),
      this.keys.events(id),
      this.keys.ended(),
      this.keys.committed(id),
      this.keys.failedChunks(id),
      this.keys.retrying(id),
      this.keys.chunkFailures(id),
      this.keys.partVersions(id),
    ];
  }

  private args(now = new Date().toISOString()): Args {
    return [now, this.limits.eventsMaxLen, this.limits.endedEventsMaxLen];
  }
}
