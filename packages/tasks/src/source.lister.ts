import { ErrorCode, isTerminal, modelLabels, VisionqError } from '@visionq/api';
import type { Config } from '@visionq/config';
import type { Logger } from '@visionq/observability';
import { ObjectAccessDeniedError, ObjectNotFoundError, type ObjectStore } from '@visionq/object-store';
import { jobLogFields, type ListJobData } from './queue.jobs';
import type { TaskQueue } from './task.queue';
import { splitIntoChunks } from './task.submitter';
import type { TaskStore } from './task.store';

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
    private readonly options: Pick<Config['tasks'], 'listPageSize' | 'chunkSize'>,
    private readonly logger: Logger,
  ) {}

  /** A prefix the store does not have or refuses throws a VisionqError no retry cures. */
  async process(job: ListJobData): Promise<void> {
    const status = await this.tasks.status(job.taskId);
    if (status === null || isTerminal(status)) return;
    await this.tasks.markRunning(job.taskId);
    let page;
    try {
      page = await this.store.list(job.source, { cursor: job.cursor, limit: this.options.listPageSize });
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw new VisionqError(ErrorCode.NotFound, `cannot list ${job.source}: ${err.message}`, [], { cause: err });
      if (err instanceof ObjectAccessDeniedError) throw new VisionqError(ErrorCode.Forbidden, `cannot list ${job.source}: ${err.message}`, [], { cause: err });
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
    this.logger.info('source page listed', { ...jobLogFields(job), ...modelLabels(job.model), page: job.page, images: images.length, chunks: chunks.length, last, commit: outcome });
  }
}
