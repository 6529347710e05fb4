import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { ErrorCode, VisionqError, type ImageResult } from '@visionq/api';
import { LocalObjectStore } from '@visionq/object-store';
import { createLogger } from '@visionq/observability';
import {
  chunkQueueName,
  connectRedis,
  DeadlineSweeper,
  IdempotencyStore,
  KeyNamespace,
  ResultStore,
  TaskQueue,
  TaskStore,
  TaskEventHub,
  TaskEvents,
  TaskSubmitter,
  WorkerRegistry,
  type ChunkJobData,
  type ListJobData,
  type TaskRecord,
  type TaskSpec,
  type WorkerInfo,
} from '@visionq/tasks';
import { rejection } from '../support/promises';
import { deleteKeys } from '../support/redis-keys';

const REDIS_URL = 'redis://127.0.0.1:6379';
const RETENTION_SECONDS = 600;
const OUTPUT = 's3://results/out/';

/** Every key this run writes starts with it; `after` deletes them all. */
const PREFIX = `vq-test-${randomUUID().slice(0, 8)}`;
const KEYS = new KeyNamespace(PREFIX);
const LIMITS = { retentionSeconds: RETENTION_SECONDS, eventsMaxLen: 1000, endedEventsMaxLen: 1000 };

let redis: Redis;
/** Extra connections, so concurrent calls really race in Redis rather than on one socket. */
let pool: Redis[] = [];
let tasks: TaskStore;

// ---------------------------------------------------------------- helpers

function taskSpec(overrides: Partial<TaskSpec> = {}): TaskSpec {
  return { id: randomUUID(), tenant: 'acme', kind: 'batch', model: 'vgg16', topK: 5, output: OUTPUT, priority: 5, ...overrides };
}

/** A task of `chunks` chunks holding `images` images, known at submit. */
function createTask(chunks: number, images: number, overrides: Partial<TaskSpec> = {}): Promise<TaskRecord> {
  return tasks.create(taskSpec(overrides), { images, chunks });
}

async function getTask(id: string): Promise<TaskRecord> {
  const record = await tasks.get(id);
  expect(record, `task ${id}`).to.not.equal(null);
  return record!;
}

/** The object without its undefined fields, so "absent" and "undefined" compare equal. */
function defined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function expectIsoTime(value: string | undefined, what: string): void {
  expect(value, what).to.be.a('string');
  expect(new Date(value!).toISOString(), what).to.equal(value);
}

/** `count` result lines of one chunk; every other one an error, when `withErrors`. */
function chunkResults(chunk: number, count: number, withErrors = false): ImageResult[] {
  return Array.from({ length: count }, (_, i): ImageResult => {
    const image = `s3://in/c${chunk}/img-${i}.jpg`;
    return withErrors && i % 2 === 1
      ? { image, error: { code: ErrorCode.ImageDecodeFailed, message: 'not an image' } }
      : { image, predictions: [{ class_id: chunk * 100 + i, label: `label-${chunk}-${i}`, probability: 0.5 }] };
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- suite

describe('@visionq/tasks against Redis', function () {
  before(async () => {
    redis = (await connectRedis(REDIS_URL, { failFast: false, onError: () => undefined })) as Redis;
    pool = (await Promise.all(Array.from({ length: 4 }, () => connectRedis(REDIS_URL, { failFast: false, onError: () => undefined })))) as Redis[];
    tasks = new TaskStore(redis, KEYS, LIMITS);
  });

  after(async () => {
    if (redis) {
      await deleteKeys(redis, `${PREFIX}*`);
      const [, left] = await redis.scan('0', 'MATCH', `${PREFIX}*`, 'COUNT', 1000);
      expect(left, 'keys left under the test prefix').to.deep.equal([]);
    }
    await Promise.all([redis, ...pool].filter(Boolean).map((r) => r.quit()));
  });

  describe('TaskStore', () => {
    it('create + get round trips every field, metadata JSON and source', async () => {
      const spec = taskSpec({
        tenant: 'globex',
        kind: 'batch',
        model: 'resnet50',
        topK: 3,
        priority: 2,
        metadata: { owner: 'ünïcode', tags: ['a', 'b'], nested: { n: 1.5, nil: null, flag: false } },
        source: 's3://in/prefix/',
      });
      const created = await tasks.create(spec, { images: 7, chunks: 2 });
      expect(created).to.deep.include({ ...spec, status: 'queued', total: 7, done: 0, succeeded: 0, failed: 0, chunks: 2, listed: true });
      expectIsoTime(created.createdAt, 'createdAt');

      const read = await getTask(spec.id);
      expect(defined(read)).to.deep.equal(defined(created));
      expect(read.metadata).to.deep.equal(spec.metadata);
      expect(read.startedAt).to.equal(undefined);
      expect(read.finishedAt).to.equal(undefined);
      expect(read.error).to.equal(undefined);
      expect(await tasks.status(spec.id)).to.equal('queued');
    });

    it('keeps a task without metadata or source without them', async () => {
      const spec = taskSpec({ kind: 'predict' });
      await tasks.create(spec, { images: 1, chunks: 1 });
      const read = await getTask(spec.id);
      expect(read.kind).to.equal('predict');
      expect(read.metadata).to.equal(undefined);
      expect(read.source).to.equal(undefined);
    });

    it('answers null for an unknown id', async () => {
      expect(await tasks.get(randomUUID())).to.equal(null);
      expect(await tasks.status(randomUUID())).to.equal(null);
    });

    describe('commitChunk', () => {
      it('counts a chunk once: committed, then duplicate', async () => {
        const task = await createTask(3, 8);
        expect(await tasks.commitChunk(task.id, 0, { succeeded: 2, failed: 1 })).to.equal('committed');
        expect(await tasks.commitChunk(task.id, 0, { succeeded: 2, failed: 1 })).to.equal('duplicate');
        expect(await tasks.commitChunk(task.id, 0, { succeeded: 3, failed: 0 })).to.equal('duplicate');
        expect(await getTask(task.id)).to.deep.include({ status: 'queued', done: 3, succeeded: 2, failed: 1, total: 8 });
        expect(await tasks.isCommitted(task.id, 0)).to.equal(true);
        expect(await tasks.isCommitted(task.id, 1)).to.equal(false);
        expect(await tasks.committedChunks(task.id)).to.deep.equal([0]);
      });

      it('counts one of 10 concurrent commits of the same chunk', async () => {
        const task = await createTask(2, 6);
        const stores = pool.map((r) => new TaskStore(r, KEYS, LIMITS));
        const outcomes = await Promise.all(
          Array.from({ length: 10 }, (_, i) => stores[i % stores.length]!.commitChunk(task.id, 1, { succeeded: 3, failed: 0 })),
        );
        expect(outcomes.filter((o) => o !== 'duplicate')).to.deep.equal(['committed']);
        expect(outcomes.filter((o) => o === 'duplicate')).to.have.length(9);
        expect(await getTask(task.id)).to.deep.include({ done: 3, succeeded: 3, failed: 0, status: 'queued' });
      });

      it('finishes as succeeded after the last chunk when no image failed, and a late duplicate changes nothing', async () => {
        const task = await createTask(3, 5);
        await tasks.markRunning(task.id);
        expect(await tasks.commitChunk(task.id, 2, { succeeded: 1, failed: 0 })).to.equal('committed');
        expect(await tasks.commitChunk(task.id, 0, { succeeded: 2, failed: 0 })).to.equal('committed');
        expect(await tasks.commitChunk(task.id, 1, { succeeded: 2, failed: 0 })).to.equal('finished');

        const finished = await getTask(task.id);
        expect(finished).to.deep.include({ status: 'succeeded', total: 5, done: 5, succeeded: 5, failed: 0 });
        expectIsoTime(finished.startedAt, 'startedAt');
        expectIsoTime(finished.finishedAt, 'finishedAt');
        expect(finished.finishedAt! >= finished.startedAt!).to.equal(true);

        expect(await tasks.commitChunk(task.id, 1, { succeeded: 2, failed: 0 })).to.equal('duplicate');
        expect(await getTask(task.id)).to.deep.equal(finished);
      });

      it('finishes as completed_with_errors when an image failed, setting started_at even if never marked running', async () => {
        const task = await createTask(2, 4);
        expect(await tasks.commitChunk(task.id, 0, { succeeded: 2, failed: 0 })).to.equal('committed');
        expect(await tasks.commitChunk(task.id, 1, { succeeded: 1, failed: 1 })).to.equal('finished');
        const finished = await getTask(task.id);
        expect(finished).to.deep.include({ status: 'completed_with_errors', done: 4, succeeded: 3, failed: 1 });
        expectIsoTime(finished.startedAt, 'startedAt');
        expectIsoTime(finished.finishedAt, 'finishedAt');
      });

      it('refuses a chunk number beyond a fully known task, so it can never finish the task early', async () => {
        const task = await createTask(3, 6);
        await tasks.commitChunk(task.id, 0, { succeeded: 2, failed: 0 });
        await tasks.commitChunk(task.id, 1, { succeeded: 2, failed: 0 });
        let caught: unknown;
        await tasks.commitChunk(task.id, 99, { succeeded: 2, failed: 0 }).catch((err) => (caught = err));
        expect(String(caught)).to.match(/chunk 99 is beyond the task/);
        expect(await getTask(task.id)).to.include({ status: 'queued', done: 4 });
      });

      it('answers missing for a task that does not exist, and stores nothing', async () => {
        const id = randomUUID();
        expect(await tasks.commitChunk(id, 0, { succeeded: 1, failed: 0 })).to.equal('missing');
        expect(await tasks.committedChunks(id)).to.deep.equal([]);
        expect(await tasks.get(id)).to.equal(null);
      });
    });

    describe('markRunning', () => {
      it('moves queued → running once, keeping the first started_at', async () => {
        const task = await createTask(1, 1);
        await tasks.markRunning(task.id);
        const running = await getTask(task.id);
        expect(running.status).to.equal('running');
        expectIsoTime(running.startedAt, 'startedAt');

        await sleep(5);
        await tasks.markRunning(task.id);
        expect(await getTask(task.id)).to.deep.equal(running);
      });

      it('does not revive a finished or cancelled task', async () => {
        const cancelled = await createTask(1, 1);
        await tasks.cancel(cancelled.id);
        await tasks.markRunning(cancelled.id);
        expect(await tasks.status(cancelled.id)).to.equal('cancelled');
        expect((await getTask(cancelled.id)).startedAt).to.equal(undefined);
      });
    });

    describe('list (GET /tasks)', () => {
      const tenant = `lister-${randomUUID().slice(0, 6)}`;
      const walk = async (options: { status?: TaskRecord['status']; limit: number }) => {
        const ids: string[] = [];
        let cursor: string | undefined;
        for (let i = 0; i < 50; i++) {
          const page = await tasks.list(tenant, { ...options, ...(cursor ? { cursor } : {}) });
          expect(page.tasks.length).to.be.at.most(options.limit);
          ids.push(...page.tasks.map((t) => t.id));
          if (page.nextCursor === null) return ids;
          cursor = page.nextCursor;
        }
        throw new Error('no end of the list');
      };

      it('pages a tenant\'s tasks newest first, each once, by status, dropping expired ones, even within one millisecond', async () => {
        const made: TaskRecord[] = [];
        for (let i = 0; i < 7; i++) made.push(await createTask(1, 1, { tenant }));
        await createTask(1, 1, { tenant: `${tenant}-other` });
        // Three of them in one millisecond: ties come in one order, and a cursor between them loses none.
        await redis.zadd(KEYS.tenantTasks(tenant), 'XX', 5, made[2]!.id, 5, made[3]!.id, 5, made[4]!.id);
        const ids = await walk({ limit: 2 });
        expect([...ids].sort()).to.deep.equal(made.map((t) => t.id).sort());
        // The tied three are now the oldest, after the others newest first; among them, ids descending.
        expect(ids.slice(0, 4)).to.deep.equal([made[6]!.id, made[5]!.id, made[1]!.id, made[0]!.id]);
        expect(ids.slice(4)).to.deep.equal([made[2]!.id, made[3]!.id, made[4]!.id].sort().reverse());
        expect(await walk({ limit: 100 })).to.deep.equal(ids);

        await tasks.cancel(made[1]!.id);
        await tasks.cancel(made[5]!.id);
        expect(await walk({ limit: 1, status: 'cancelled' })).to.deep.equal([made[5]!.id, made[1]!.id]);

        await redis.del(KEYS.task(made[6]!.id));
        expect(await walk({ limit: 100 })).to.not.include(made[6]!.id);
        expect(await redis.zscore(KEYS.tenantTasks(tenant), made[6]!.id)).to.equal(null);
        expect((await rejection<VisionqError>(tasks.list(tenant, { limit: 1, cursor: 'bm9wZQ' }))).code).to.equal(ErrorCode.InvalidArgument);
      });
    });

    describe('cancel and fail', () => {
      it('cancels a queued task, once', async () => {
        const task = await createTask(2, 4);
        expect(await tasks.cancel(task.id)).to.equal('cancelled');
        const cancelled = await getTask(task.id);
        expect(cancelled.status).to.equal('cancelled');
        expectIsoTime(cancelled.finishedAt, 'finishedAt');
        expect(await tasks.cancel(task.id)).to.equal('already_cancelled');
        expect(await getTask(task.id)).to.deep.equal(cancelled);
      });

      it('cancels a running task; later commits still count but the status stays cancelled', async () => {
        const task = await createTask(2, 4);
        await tasks.markRunning(task.id);
        expect(await tasks.commitChunk(task.id, 0, { succeeded: 2, failed: 0 })).to.equal('committed');
        expect(await tasks.cancel(task.id)).to.equal('cancelled');
        const cancelledAt = (await getTask(task.id)).finishedAt;

        // The last chunk was already running: it counts, but does not finish the task.
        expect(await tasks.commitChunk(task.id, 1, { succeeded: 1, failed: 1 })).to.equal('committed');
        const after = await getTask(task.id);
        expect(after).to.deep.include({ status: 'cancelled', done: 4, succeeded: 3, failed: 1, finishedAt: cancelledAt });
        expect(await tasks.commitChunk(task.id, 1, { succeeded: 1, failed: 1 })).to.equal('duplicate');
      });

      it('does not cancel a finished task, and answers missing for an unknown one', async () => {
        const task = await createTask(1, 2);
        expect(await tasks.commitChunk(task.id, 0, { succeeded: 2, failed: 0 })).to.equal('finished');
        expect(await tasks.cancel(task.id)).to.equal('finished');
        expect(await tasks.status(task.id)).to.equal('succeeded');
        expect(await tasks.cancel(randomUUID())).to.equal('missing');
      });

      it('fail() marks a live task failed with its error, but not a finished one', async () => {
        const task = await createTask(2, 4);
        await tasks.markRunning(task.id);
        const error = { code: 'unavailable', message: 'chunk 1 ran out of retries' };
        expect(await tasks.fail(task.id, error)).to.equal(true);
        const failed = await getTask(task.id);
        expect(failed).to.deep.include({ status: 'failed', error });
        expectIsoTime(failed.finishedAt, 'finishedAt');
        expect(await tasks.fail(task.id, { code: 'internal', message: 'again' })).to.equal(false);
        expect((await getTask(task.id)).error).to.deep.equal(error);

        const done = await createTask(1, 1);
        await tasks.commitChunk(done.id, 0, { succeeded: 1, failed: 0 });
        expect(await tasks.fail(done.id, error)).to.equal(false);
        const after = await getTask(done.id);
        expect(after.status).to.equal('succeeded');
        expect(after.error).to.equal(undefined);

        const cancelled = await createTask(1, 1);
        await tasks.cancel(cancelled.id);
        expect(await tasks.fail(cancelled.id, error)).to.equal(false);
        expect(await tasks.status(cancelled.id)).to.equal('cancelled');
        expect(await tasks.fail(randomUUID(), error)).to.equal(false);
      });
    });

    describe('source tasks (commitPage)', () => {
      function createSourceTask(): Promise<TaskRecord> {
        return tasks.create(taskSpec({ source: 's3://in/photos/' }), null);
      }

      it('starts with nothing known and not listed', async () => {
        const task = await createSourceTask();
        expect(task).to.deep.include({ total: 0, chunks: 0, listed: false, status: 'queued', source: 's3://in/photos/' });
        expect(await getTask(task.id)).to.deep.include({ total: 0, chunks: 0, listed: false });
      });

      it('adds each page once; finishes when the last page is listed and then every chunk commits', async () => {
        const task = await createSourceTask();
        expect(await tasks.commitPage(task.id, 0, 4, 2, false)).to.equal('committed');
        expect(await tasks.commitPage(task.id, 0, 4, 2, false)).to.equal('duplicate');
        expect(await getTask(task.id)).to.deep.include({ total: 4, chunks: 2, listed: false });

        // Every chunk known so far commits, but the listing has not ended: no finish.
        expect(await tasks.commitChunk(task.id, 0, { succeeded: 2, failed: 0 })).to.equal('committed');
        expect(await tasks.commitChunk(task.id, 1, { succeeded: 2, failed: 0 })).to.equal('committed');
        expect(await tasks.status(task.id)).to.equal('queued');

        expect(await tasks.commitPage(task.id, 1, 3, 1, true)).to.equal('committed');
        expect(await tasks.commitPage(task.id, 1, 3, 1, true)).to.equal('duplicate');
        expect(await getTask(task.id)).to.deep.include({ total: 7, chunks: 3, listed: true, done: 4, status: 'queued' });

        expect(await tasks.commitChunk(task.id, 2, { succeeded: 2, failed: 1 })).to.equal('finished');
        const finished = await getTask(task.id);
        expect(finished).to.deep.include({ status: 'completed_with_errors', total: 7, done: 7, succeeded: 6, failed: 1 });
        expectIsoTime(finished.finishedAt, 'finishedAt');
        expectIsoTime(finished.startedAt, 'startedAt');
      });

      it('finishes on commitPage when every chunk committed before the last page was', async () => {
        const task = await createSourceTask();
        await tasks.markRunning(task.id);
        expect(await tasks.commitPage(task.id, 0, 2, 1, false)).to.equal('committed');
        expect(await tasks.commitChunk(task.id, 0, { succeeded: 2, failed: 0 })).to.equal('committed');
        // The last page's chunk ran before its page was committed (the list job enqueues, then commits).
        expect(await tasks.commitChunk(task.id, 1, { succeeded: 1, failed: 0 })).to.equal('committed');
        expect(await tasks.status(task.id)).to.equal('running');

        expect(await tasks.commitPage(task.id, 1, 1, 1, true)).to.equal('finished');
        expect(await getTask(task.id)).to.deep.include({ status: 'succeeded', total: 3, done: 3, chunks: 2, listed: true });
        expect(await tasks.commitPage(task.id, 1, 1, 1, true)).to.equal('duplicate');
        expect(await getTask(task.id)).to.deep.include({ total: 3, chunks: 2 });
      });

      it('fails with not_found when the source holds no object', async () => {
        const task = await createSourceTask();
        expect(await tasks.commitPage(task.id, 0, 0, 0, true)).to.equal('finished');
        const failed = await getTask(task.id);
        expect(failed).to.deep.include({ status: 'failed', total: 0, chunks: 0, listed: true });
        expect(failed.error?.code).to.equal('not_found');
        expect(failed.error?.message).to.be.a('string').and.not.equal('');
        expectIsoTime(failed.finishedAt, 'finishedAt');
      });

      it('answers missing for a page of an unknown task', async () => {
        expect(await tasks.commitPage(randomUUID(), 0, 1, 1, true)).to.equal('missing');
      });
    });
  });

  describe('ResultStore', () => {
    let root: string;
    let store: LocalObjectStore;
    let results: ResultStore;
    const SIZES = [3, 3, 2];

    before(async () => {
      root = await mkdtemp(join(tmpdir(), 'vq-results-'));
      store = new LocalObjectStore(root);
      results = new ResultStore(store, tasks);
    });

    after(async () => {
      if (root) await rm(root, { recursive: true, force: true });
    });

    const lines = (chunk: number) => chunkResults(chunk, SIZES[chunk]!, chunk === 1);
    const allLines = () => SIZES.flatMap((_, chunk) => lines(chunk));

    /** A task of SIZES chunks with every part written; `commit` lists the chunks committed. */
    async function taskWithParts(commit: number[], opts: { running?: boolean } = {}): Promise<TaskRecord> {
      const task = await createTask(SIZES.length, 8);
      if (opts.running) await tasks.markRunning(task.id);
      for (let chunk = 0; chunk < SIZES.length; chunk++) await results.writePart(task, chunk, lines(chunk));
      for (const chunk of commit) await commitLines(task, chunk);
      return getTask(task.id);
    }

    async function commitLines(task: TaskRecord, chunk: number): Promise<void> {
      const part = lines(chunk);
      const failed = part.filter((r) => 'error' in r).length;
      await tasks.commitChunk(task.id, chunk, { succeeded: part.length - failed, failed });
    }

    /** Every page from `cursor` until a null cursor; the pages' sizes too. */
    async function walk(task: TaskRecord, limit: number, cursor: string | null = null) {
      const seen: ImageResult[] = [];
      const sizes: number[] = [];
      for (let pages = 0; ; pages++) {
        expect(pages, 'pages before a null cursor').to.be.below(50);
        const page = await results.page(task, cursor, limit);
        expect(page.results.length).to.be.at.most(limit);
        seen.push(...page.results);
        sizes.push(page.results.length);
        if (page.nextCursor === null) return { seen, sizes };
        cursor = page.nextCursor;
      }
    }

    async function streamLines(task: TaskRecord): Promise<ImageResult[]> {
      const pieces: Buffer[] = [];
      for await (const piece of results.stream(task)) pieces.push(Buffer.from(piece));
      const text = Buffer.concat(pieces).toString('utf8');
      expect(text === '' || text.endsWith('\n'), 'stream ends with a newline').to.equal(true);
      return text
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as ImageResult);
    }

    it('partUri is <output><id>/part-NNNNNN.jsonl', () => {
      expect(ResultStore.partUri({ id: 'abc', output: 's3://results/out/' }, 0)).to.equal('s3://results/out/abc/part-000000.jsonl');
      expect(ResultStore.partUri({ id: 'abc', output: 's3://results/out' }, 42)).to.equal('s3://results/out/abc/part-000042.jsonl');
      expect(ResultStore.partUri({ id: 'abc', output: 's3://results/' }, 123456)).to.equal('s3://results/abc/part-123456.jsonl');
    });

    it('writePart writes one JSON line per result under the part URI', async () => {
      const task = await taskWithParts([]);
      const file = await readFile(join(root, 'results', 'out', task.id, 'part-000001.jsonl'), 'utf8');
      expect(file).to.equal(lines(1).map((r) => JSON.stringify(r) + '\n').join(''));
    });

    it('walks every result of a finished task in order, 2 at a time, ending with a null cursor', async () => {
      const task = await taskWithParts([0, 1, 2]);
      expect(task.status).to.equal('completed_with_errors');
      const { seen, sizes } = await walk(task, 2);
      expect(sizes).to.deep.equal([2, 2, 2, 2]);
      expect(seen).to.deep.equal(allLines());
    });

    it('returns everything in one page with a null cursor when the limit is larger', async () => {
      const task = await taskWithParts([0, 1, 2]);
      const page = await results.page(task, null, 100);
      expect(page).to.deep.equal({ results: allLines(), nextCursor: null });
      const exact = await results.page(task, null, 8);
      expect(exact).to.deep.equal({ results: allLines(), nextCursor: null });
    });

    it('walks with limits that split chunks differently, without gaps or duplicates', async () => {
      const task = await taskWithParts([0, 1, 2]);
      for (const limit of [1, 3, 5, 7]) {
        const { seen } = await walk(task, limit);
        expect(seen, `limit ${limit}`).to.deep.equal(allLines());
      }
    });

    it('refuses a cursor it did not make with invalid_argument', async () => {
      const task = await taskWithParts([0, 1, 2]);
      const forged = [
        'garbage!',
        Buffer.from('x.y').toString('base64url'),
        Buffer.from('1').toString('base64url'),
        Buffer.from('-1.0').toString('base64url'),
        Buffer.from('1.2.3').toString('base64url'),
      ];
      for (const cursor of forged) {
        const err = await rejection(results.page(task, cursor, 2));
        expect(err, cursor).to.be.instanceOf(VisionqError);
        expect((err as VisionqError).code, cursor).to.equal(ErrorCode.InvalidArgument);
      }
    });

    it('stops a running task at its first uncommitted chunk and resumes exactly there', async () => {
      // Every part is written, but chunk 1 has not committed: readers must not see it, nor chunk 2.
      const task = await taskWithParts([0, 2], { running: true });
      expect(task.status).to.equal('running');

      const first = await results.page(task, null, 2);
      expect(first.results).to.deep.equal(lines(0).slice(0, 2));
      expect(first.nextCursor).to.be.a('string');
      const second = await results.page(task, first.nextCursor, 2);
      expect(second.results).to.deep.equal(lines(0).slice(2));
      expect(second.nextCursor).to.be.a('string');
      // Nothing new yet: an empty page, and a cursor pointing at the same place.
      const idle = await results.page(task, second.nextCursor, 2);
      expect(idle.results).to.deep.equal([]);
      expect(idle.nextCursor).to.equal(second.nextCursor);
      expect(await streamLines(task)).to.deep.equal(lines(0));

      await commitLines(task, 1);
      const finished = await getTask(task.id);
      expect(finished.status).to.equal('completed_with_errors');
      const rest = await walk(finished, 2, idle.nextCursor);
      expect(rest.seen).to.deep.equal([...lines(1), ...lines(2)]);
      expect([...first.results, ...second.results, ...rest.seen]).to.deep.equal(allLines());
    });

    it('resumes a running task when its remaining chunks commit one by one', async () => {
      const task = await taskWithParts([0], { running: true });
      const start = await results.page(task, null, 100);
      expect(start.results).to.deep.equal(lines(0));

      await commitLines(task, 1);
      const middle = await results.page(await getTask(task.id), start.nextCursor, 100);
      expect(middle.results).to.deep.equal(lines(1));
      expect(middle.nextCursor).to.be.a('string');

      await commitLines(task, 2);
      const end = await results.page(await getTask(task.id), middle.nextCursor, 100);
      expect(end).to.deep.equal({ results: lines(2), nextCursor: null });
    });

    it('streams the committed parts in chunk order', async () => {
      const task = await taskWithParts([2, 0, 1]);
      expect(await streamLines(task)).to.deep.equal(allLines());
    });

    it('skips, in a cancelled task, a chunk in the middle that never committed', async () => {
      const task = await taskWithParts([0, 2], { running: true });
      expect(await tasks.cancel(task.id)).to.equal('cancelled');
      const cancelled = await getTask(task.id);
      const expected = [...lines(0), ...lines(2)];

      expect(await results.page(cancelled, null, 100)).to.deep.equal({ results: expected, nextCursor: null });
      for (const limit of [1, 2, 3, 4]) expect((await walk(cancelled, limit)).seen, `limit ${limit}`).to.deep.equal(expected);
      expect(await streamLines(cancelled)).to.deep.equal(expected);
    });

    it('ends a cancelled task missing its last chunk without gaps or duplicates', async () => {
      const task = await taskWithParts([0, 1], { running: true });
      await tasks.cancel(task.id);
      const cancelled = await getTask(task.id);
      const expected = [...lines(0), ...lines(1)];
      for (const limit of [2, 3, 6, 100]) expect((await walk(cancelled, limit)).seen, `limit ${limit}`).to.deep.equal(expected);
      expect(await streamLines(cancelled)).to.deep.equal(expected);
    });

    it('reads nothing, with a null cursor, for a cancelled task that committed no chunk', async () => {
      const task = await taskWithParts([]);
      await tasks.cancel(task.id);
      const cancelled = await getTask(task.id);
      expect(await results.page(cancelled, null, 10)).to.deep.equal({ results: [], nextCursor: null });
      expect(await streamLines(cancelled)).to.deep.equal([]);
    });
  });

  describe('IdempotencyStore', () => {
    let idempotency: IdempotencyStore;
    before(() => {
      idempotency = new IdempotencyStore(redis, KEYS, 60);
    });

    it('claims a new key, replays the same request, and refuses a different one', async () => {
      const key = `key-${randomUUID()}`;
      const first = randomUUID();
      expect(await idempotency.claim(key, 'hash-a', first)).to.deep.equal({ outcome: 'new' });
      expect(await idempotency.claim(key, 'hash-a', randomUUID())).to.deep.equal({ outcome: 'replay', taskId: first });
      expect(await idempotency.claim(key, 'hash-b', randomUUID())).to.deep.equal({ outcome: 'conflict', taskId: first });
    });

    it('keeps keys apart, whatever characters they hold', async () => {
      const a = `a:b/${randomUUID()} ü`;
      const b = `a:b/${randomUUID()} ü`;
      expect(await idempotency.claim(a, 'h', 't-a')).to.deep.equal({ outcome: 'new' });
      expect(await idempotency.claim(b, 'h', 't-b')).to.deep.equal({ outcome: 'new' });
      expect(await idempotency.claim(a, 'h', 'other')).to.deep.equal({ outcome: 'replay', taskId: 't-a' });
    });

    it('release frees the key only for the task that holds it', async () => {
      const key = `key-${randomUUID()}`;
      expect(await idempotency.claim(key, 'h', 'task-1')).to.deep.equal({ outcome: 'new' });
      await idempotency.release(key, 'task-2');
      expect(await idempotency.claim(key, 'h', 'task-3')).to.deep.equal({ outcome: 'replay', taskId: 'task-1' });
      await idempotency.release(key, 'task-1');
      expect(await idempotency.claim(key, 'h2', 'task-4')).to.deep.equal({ outcome: 'new' });
      expect(await idempotency.claim(key, 'h', 'task-5')).to.deep.equal({ outcome: 'conflict', taskId: 'task-4' });
      await idempotency.release(`never-claimed-${randomUUID()}`, 'task-1'); // no-op, no throw
    });

    it('gives one of 10 concurrent claims of a key the task; the others replay it', async () => {
      const key = `key-${randomUUID()}`;
      const stores = pool.map((r) => new IdempotencyStore(r, KEYS, 60));
      const ids = Array.from({ length: 10 }, () => randomUUID());
      const claims = await Promise.all(ids.map((id, i) => stores[i % stores.length]!.claim(key, 'same-hash', id)));
      const winners = ids.filter((_, i) => claims[i]!.outcome === 'new');
      expect(winners).to.have.length(1);
      const others = claims.filter((c) => c.outcome !== 'new');
      expect(others).to.have.length(9);
      for (const claim of others) expect(claim).to.deep.equal({ outcome: 'replay', taskId: winners[0] });
    });
  });

  describe('WorkerRegistry', () => {
    const TTL_MS = 600;

    function workerInfo(id: string): WorkerInfo {
      return { id, hostname: 'host-a', pid: 4242, models: ['vgg16', 'resnet50'], providers: { vgg16: 'cuda', resnet50: 'cpu' }, startedAt: new Date().toISOString() };
    }

    const byId = (a: WorkerInfo, b: WorkerInfo) => a.id.localeCompare(b.id);

    it('lists started workers, keeps them past the TTL by heartbeats, and drops a stopped one at once', async () => {
      const prefix = `${PREFIX}:wr-${randomUUID().slice(0, 8)}`;
      const a = new WorkerRegistry(redis, new KeyNamespace(prefix), TTL_MS);
      const b = new WorkerRegistry(redis, new KeyNamespace(prefix), TTL_MS);
      const errors: unknown[] = [];
      const infoA = workerInfo('worker-a');
      const infoB = workerInfo('worker-b');
      try {
        expect(await a.live()).to.deep.equal([]);
        await a.start(infoA, (err) => errors.push(err));
        await b.start(infoB, (err) => errors.push(err));
        expect((await a.live()).sort(byId)).to.deep.equal([infoA, infoB]);

        await sleep(TTL_MS + 300); // outlives the TTL only because of the heartbeats
        expect((await b.live()).sort(byId)).to.deep.equal([infoA, infoB]);

        await a.stop(infoA.id);
        expect(await b.live()).to.deep.equal([infoB]);
        await b.stop(infoB.id);
        expect(await a.live()).to.deep.equal([]);
        expect(errors).to.deep.equal([]);
      } finally {
        await a.stop(infoA.id);
        await b.stop(infoB.id);
      }
    });

    it('sees only the workers of its own prefix', async () => {
      const mine = new WorkerRegistry(redis, new KeyNamespace(`${PREFIX}:wr-mine`), TTL_MS);
      const theirs = new WorkerRegistry(redis, new KeyNamespace(`${PREFIX}:wr-theirs`), TTL_MS);
      try {
        await theirs.start(workerInfo('other'), () => undefined);
        expect(await mine.live()).to.deep.equal([]);
      } finally {
        await theirs.stop('other');
      }
    });
  });

  describe('tenant images in flight and deadlines', () => {
    it('refuses a task that would pass its tenant\'s images in flight, storing nothing, until others end', async () => {
      const tenant = `t-${randomUUID().slice(0, 8)}`;
      const a = await tasks.create(taskSpec({ tenant }), { images: 2, chunks: 1 }, 3);
      const refused = taskSpec({ tenant });
      const err = await rejection<VisionqError>(tasks.create(refused, { images: 2, chunks: 1 }, 3));
      expect(err).to.be.instanceOf(VisionqError).with.property('code', ErrorCode.RateLimited);
      expect(err.retryAfterSeconds).to.be.greaterThan(0);
      expect(await tasks.get(refused.id)).to.equal(null);
      expect(await redis.get(KEYS.inFlight(tenant))).to.equal('2');
      // Another tenant's images do not count.
      await tasks.create(taskSpec({ tenant: `${tenant}-other` }), { images: 3, chunks: 1 }, 3);
      await tasks.commitChunk(a.id, 0, { succeeded: 2, failed: 0 });
      expect(await redis.get(KEYS.inFlight(tenant))).to.equal(null);
      const b = await tasks.create(taskSpec({ tenant }), { images: 3, chunks: 1 }, 3);
      await tasks.cancel(b.id);
      expect(await redis.get(KEYS.inFlight(tenant))).to.equal(null);
    });

    it('counts a source task\'s images in flight as its pages are listed', async () => {
      const tenant = `t-${randomUUID().slice(0, 8)}`;
      const task = await tasks.create(taskSpec({ tenant, source: 's3://in/p/' }), null, 100);
      await tasks.commitPage(task.id, 0, 4, 1, false);
      expect(await redis.get(KEYS.inFlight(tenant))).to.equal('4');
      await tasks.fail(task.id, { code: 'unavailable', message: 'x' });
      expect(await redis.get(KEYS.inFlight(tenant))).to.equal(null);
    });

    it('keeps each model\'s backlog in images not done yet, and the age of its oldest unfinished task', async () => {
      const model = `m-${randomUUID().slice(0, 8)}`;
      expect(await tasks.backlog(model)).to.deep.equal({ images: 0, oldestMs: null });
      const before = Date.now();
      const a = await tasks.create(taskSpec({ model }), { images: 5, chunks: 2 });
      const b = await tasks.create(taskSpec({ model, source: 's3://in/p/' }), null);
      await tasks.commitPage(b.id, 0, 4, 1, true);
      expect((await tasks.backlog(model)).images).to.equal(9);
      expect((await tasks.backlog(model)).oldestMs).to.be.within(before - 1000, Date.now() + 1000);
      await tasks.commitChunk(a.id, 0, { succeeded: 2, failed: 1 });
      expect((await tasks.backlog(model)).images).to.equal(6);
      await tasks.cancel(a.id);
      // A chunk that commits after its task ended changes nothing more.
      await tasks.commitChunk(a.id, 1, { succeeded: 2, failed: 0 });
      expect((await tasks.backlog(model)).images).to.equal(4);
      await tasks.commitChunk(b.id, 0, { succeeded: 4, failed: 0 });
      expect(await tasks.backlog(model)).to.deep.equal({ images: 0, oldestMs: null });
    });

    it('ends a task past its deadline as failed with timeout, keeping what committed, and forgets ended ones', async () => {
      const sweeper = new DeadlineSweeper(tasks, createLogger({ silent: true }));
      const late = await tasks.create(taskSpec({ deadline: new Date(Date.now() + 60_000).toISOString() }), { images: 4, chunks: 2 });
      const done = await tasks.create(taskSpec({ deadline: new Date(Date.now() + 60_000).toISOString() }), { images: 1, chunks: 1 });
      await tasks.commitChunk(late.id, 0, { succeeded: 2, failed: 0 });
      await tasks.commitChunk(done.id, 0, { succeeded: 1, failed: 0 });
      expect(await tasks.pastDeadline(Date.now() + 120_000, 1000)).to.include(late.id).and.not.include(done.id);
      await sweeper.sweep(Date.now() + 120_000);
      expect(await getTask(late.id)).to.deep.include({ status: 'failed', done: 2, succeeded: 2 });
      expect((await getTask(late.id)).error).to.deep.include({ code: 'timeout' });
      expect(await tasks.committedChunks(late.id)).to.deep.equal([0]);
      expect(await tasks.pastDeadline(Date.now() + 120_000, 1000)).to.not.include(late.id);
      expect((await getTask(done.id)).status).to.equal('succeeded');
    });
  });

  describe('TaskEvents', () => {
    let events: TaskEvents;
    before(() => {
      events = new TaskEvents(redis, KEYS);
    });

    const kinds = (list: { type: string }[]) => list.map((e) => e.type);

    it('logs created, running, one progress per chunk (a duplicate adds none) and one ended, each with its counts', async () => {
      const task = await createTask(2, 5);
      await tasks.markRunning(task.id);
      await tasks.markRunning(task.id);
      await tasks.commitChunk(task.id, 0, { succeeded: 3, failed: 0 });
      await tasks.commitChunk(task.id, 0, { succeeded: 3, failed: 0 });
      await tasks.commitChunk(task.id, 1, { succeeded: 1, failed: 1 });
      const log = await events.replay(task.id);
      expect(kinds(log)).to.deep.equal(['created', 'running', 'progress', 'progress', 'ended']);
      expect(log.map((e) => e.status)).to.deep.equal(['queued', 'running', 'running', 'running', 'completed_with_errors']);
      expect(log[2]).to.deep.include({ task_id: task.id, chunk: 0, progress: { total: 5, done: 3, succeeded: 3, failed: 0 } });
      expect(log[3]).to.deep.include({ chunk: 1, progress: { total: 5, done: 5, succeeded: 4, failed: 1 } });
      expect(log[4]!.progress).to.deep.equal({ total: 5, done: 5, succeeded: 4, failed: 1 });
      for (const event of log) expectIsoTime(event.at, 'at');
      // Replaying after an id gives exactly what came later.
      expect(kinds(await events.replay(task.id, log[2]!.id))).to.deep.equal(['progress', 'ended']);
      expect(await events.replay(task.id, log[4]!.id)).to.deep.equal([]);
    });

    it('logs a cancel or a failure as one ended with its error, and nothing for what is refused after', async () => {
      const cancelled = await createTask(2, 2);
      await tasks.cancel(cancelled.id);
      await tasks.cancel(cancelled.id);
      await tasks.fail(cancelled.id, { code: 'unavailable', message: 'x' });
      expect(kinds(await events.replay(cancelled.id))).to.deep.equal(['created', 'ended']);
      const failed = await createTask(1, 1);
      await tasks.fail(failed.id, { code: 'unavailable', message: 'store down' });
      const ended = (await events.replay(failed.id)).at(-1)!;
      expect(ended).to.deep.include({ type: 'ended', status: 'failed', error: { code: 'unavailable', message: 'store down' } });
    });

    it('logs each listed page of a source task as progress with the new total', async () => {
      const task = await tasks.create(taskSpec({ source: 's3://in/p/' }), null);
      await tasks.commitPage(task.id, 0, 3, 1, false);
      await tasks.commitPage(task.id, 0, 3, 1, false);
      await tasks.commitPage(task.id, 1, 2, 1, true);
      const log = await events.replay(task.id);
      expect(log.filter((e) => e.type === 'progress').map((e) => [e.page, e.progress.total])).to.deep.equal([[0, 3], [1, 5]]);
    });

    it('appends every ending to the one stream of ended tasks', async () => {
      const [latest] = (await redis.xrevrange(KEYS.ended(), '+', '-', 'COUNT', 1)) as [string, string[]][];
      const task = await createTask(1, 1);
      await tasks.commitChunk(task.id, 0, { succeeded: 1, failed: 0 });
      const after = (await redis.xrange(KEYS.ended(), latest ? `(${latest[0]}` : '-', '+')) as [string, string[]][];
      const mine = after.map(([, fields]) => Object.fromEntries(fields.flatMap((_, i) => (i % 2 ? [] : [[fields[i], fields[i + 1]]])))).filter((e) => e.task_id === task.id);
      expect(mine).to.have.length(1);
      expect(mine[0]).to.include({ task_id: task.id, status: 'succeeded' });
    });

    it('replays from an id, then follows live until ended', async () => {
      const task = await createTask(3, 3);
      const [created] = await events.replay(task.id);
      const received: string[] = [];
      const hub = new TaskEventHub(redis, KEYS, createLogger({ silent: true }));
      try {
        const ended = new Promise<void>((resolve) => {
          hub.watch(task.id, created!.id, (event) => {
            received.push(`${event.type}${event.chunk ?? ''}`);
            if (event.type === 'ended') resolve();
          });
        });
        await tasks.markRunning(task.id);
        for (const chunk of [2, 0, 1]) {
          await sleep(20);
          await tasks.commitChunk(task.id, chunk, { succeeded: 1, failed: 0 });
        }
        await ended;
      } finally {
        await hub.close();
      }
      expect(received).to.deep.equal(['running', 'progress2', 'progress0', 'progress1', 'ended']);
    });

    it('stops delivering to a watcher once it stops watching, and serves many watchers from one loop', async () => {
      const task = await createTask(1, 1);
      const hub = new TaskEventHub(redis, KEYS, createLogger({ silent: true }));
      try {
        const first: string[] = [];
        const second: string[] = [];
        const stop = hub.watch(task.id, undefined, (event) => first.push(event.type));
        hub.watch(task.id, undefined, (event) => second.push(event.type));
        await sleep(100);
        stop();
        expect(hub.watchers).to.equal(1);
        await tasks.commitChunk(task.id, 0, { succeeded: 1, failed: 0 });
        for (let i = 0; i < 100 && second.at(-1) !== 'ended'; i++) await sleep(20);
        expect(first).to.deep.equal(['created']);
        expect(second).to.deep.equal(['created', 'progress', 'ended']);
      } finally {
        await hub.close();
      }
    });

    it('keeps at most TASK_EVENTS_MAXLEN entries, the newest, and expires the log with its task', async () => {
      const small = new TaskStore(redis, KEYS, { ...LIMITS, eventsMaxLen: 10 });
      const task = await small.create(taskSpec(), { images: 30, chunks: 30 });
      for (let chunk = 0; chunk < 30; chunk++) await small.commitChunk(task.id, chunk, { succeeded: 1, failed: 0 });
      const log = await events.replay(task.id);
      expect(log).to.have.length(10);
      expect(log.at(-1)).to.deep.include({ type: 'ended', status: 'succeeded' });
      expect(log.at(-2)).to.deep.include({ type: 'progress', chunk: 29 });
      const [taskTtl, eventsTtl] = await Promise.all([redis.pttl(KEYS.task(task.id)), redis.pttl(KEYS.events(task.id))]);
      expect(eventsTtl).to.be.greaterThan(0);
      expect(Math.abs(taskTtl - eventsTtl)).to.be.below(5_000);
    });
  });

  describe('TaskSubmitter + TaskQueue (BullMQ)', () => {
    const MODEL = 'vgg16';
    let queue: TaskQueue;
    let submitter: TaskSubmitter;
    let inspect: Queue;

    before(() => {
      queue = new TaskQueue(redis, PREFIX, 3, () => undefined);
      submitter = new TaskSubmitter(tasks, queue, new IdempotencyStore(redis, KEYS, 60), 2);
      inspect = new Queue(chunkQueueName(MODEL), { connection: redis, prefix: PREFIX });
    });

    after(async () => {
      await queue?.close();
      await inspect?.close();
    });

    async function jobsOf(taskId: string): Promise<Job[]> {
      const jobs = await inspect.getJobs(['wait', 'prioritized']);
      return jobs.filter((j) => j.id!.startsWith(`${taskId}-`)).sort((x, y) => x.id!.localeCompare(y.id!));
    }

    it('submits a list of 5 images as 3 chunk jobs of 2, 2 and 1 images', async () => {
      const spec = taskSpec({ model: MODEL, priority: 4, topK: 3 });
      const images = Array.from({ length: 5 }, (_, i) => `s3://in/img-${i}.jpg`);
      expect(await submitter.submit(spec, { images })).to.deep.equal({ taskId: spec.id, status: 'queued', replayed: false });
      expect(await getTask(spec.id)).to.deep.include({ status: 'queued', total: 5, chunks: 3, listed: true, done: 0 });

      const jobs = await jobsOf(spec.id);
      expect(jobs.map((j) => j.id)).to.deep.equal([0, 1, 2].map((c) => `${spec.id}-c${c}`));
      expect(jobs.map((j) => j.name)).to.deep.equal(['chunk', 'chunk', 'chunk']);
      const expected: ChunkJobData[] = [images.slice(0, 2), images.slice(2, 4), images.slice(4)].map((part, index) => ({
        taskId: spec.id,
        index,
        images: part,
        model: MODEL,
        topK: 3,
        output: OUTPUT,
        tenant: 'acme',
      }));
      expect(jobs.map((j) => j.data)).to.deep.equal(expected);
      for (const job of jobs) expect(job.opts).to.deep.include({ priority: 4, attempts: 3 });
      expect((await tasks.backlog(MODEL)).images).to.be.at.least(5);
    });

    it('adds nothing when the same chunks are enqueued again', async () => {
      const spec = taskSpec({ model: MODEL });
      await submitter.submit(spec, { images: ['s3://in/a.jpg', 's3://in/b.jpg', 's3://in/c.jpg'] });
      const before = (await jobsOf(spec.id)).map((j) => j.id);
      expect(before).to.have.length(2);
      await queue.addChunks(
        [{ taskId: spec.id, index: 1, images: ['s3://in/c.jpg'], model: MODEL, topK: spec.topK, output: OUTPUT }],
        spec.priority,
      );
      expect((await jobsOf(spec.id)).map((j) => j.id)).to.deep.equal(before);
    });

    it('submits a source as one list job of page 0 with a null cursor', async () => {
      const spec = taskSpec({ model: MODEL, priority: 7, source: 's3://in/photos/' });
      expect(await submitter.submit(spec, { source: 's3://in/photos/' })).to.deep.equal({ taskId: spec.id, status: 'queued', replayed: false });
      expect(await getTask(spec.id)).to.deep.include({ status: 'queued', total: 0, chunks: 0, listed: false, source: 's3://in/photos/' });

      const jobs = await jobsOf(spec.id);
      expect(jobs.map((j) => [j.id, j.name])).to.deep.equal([[`${spec.id}-l0`, 'list']]);
      const expected: ListJobData = {
        taskId: spec.id,
        source: 's3://in/photos/',
        page: 0,
        cursor: null,
        firstChunk: 0,
        model: MODEL,
        topK: spec.topK,
        output: OUTPUT,
        tenant: 'acme',
        priority: 7,
      };
      expect(jobs[0]!.data).to.deep.equal(expected);
      expect(jobs[0]!.opts).to.deep.include({ priority: 7, attempts: 3 });
    });
  });
});
