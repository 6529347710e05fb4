import { ErrorCode } from '@visionq/errors';
import type { Logger } from '@visionq/observability';
import { ObjectAccessDeniedError, ObjectNotFoundError, type ObjectStore } from '@visionq/object-store';
import { isTerminal, splitIntoChunks, type ListJobData, type TaskQueue, type TaskStore } from '@visionq/tasks';

/**
 * Lists one page of a `source` prefix: enqueues its chunks, then the next page, then
 * counts the page once. A re-run repeats the same page with the same chunk numbers, so
 * nothing is enqueued or counted twice. Workers list, not the gateway: a prefix of a
 * million objects is accepted at once and listed while its first chunks already run.
 */
export class SourceLister {
  constructor(
    private readonly store: ObjectStore,
    private readonly tasks: TaskStore,
    private readonly queue: TaskQueue,
    private readonly options: { pageSize: number; chunkSize: number },
    private readonly logger: Logger,
  ) {}

  async process(job: ListJobData): Promise<void> {
    const status = await this.tasks.status(job.taskId);
    if (status === null || isTerminal(status)) return;
    await this.tasks.markRunning(job.taskId);
    let page;
    try {
      page = await this.store.list(job.source, { cursor: job.cursor, limit: this.options.pageSize });
    } catch (err) {
      if (err instanceof ObjectNotFoundError || err instanceof ObjectAccessDeniedError) {
        const code = err instanceof ObjectNotFoundError ? ErrorCode.NotFound : ErrorCode.Forbidden;
        await this.tasks.fail(job.taskId, { code, message: `cannot list ${job.source}: ${err.message}` });
        return;
      }
      throw err;
    }
    // Folder markers are not images.
    const images = page.objects.filter((o) => !o.key.endsWith('/')).map((o) => o.uri);
    const chunks = splitIntoChunks(job, images, this.options.chunkSize, job.firstChunk);
    await this.queue.addChunks(chunks, job.priority);
    const last = page.nextCursor === null;
    if (!last) {
      await this.queue.addList({ ...job, page: job.page + 1, cursor: page.nextCursor, firstChunk: job.firstChunk + chunks.length });
    }
    const outcome = await this.tasks.commitPage(job.taskId, job.page, images.length, chunks.length, last);
    this.logger.info('source page listed', { task_id: job.taskId, page: job.page, images: images.length, chunks: chunks.length, last, commit: outcome });
  }
}
