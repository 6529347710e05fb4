import type { ImageResult } from '@visionq/inference';
import type { Logger, WorkerMetrics } from '@visionq/observability';
import { isTerminal, ResultStore, type ChunkJobData, type TaskStore } from '@visionq/tasks';
import type { ImagePipeline } from './image-pipeline';


export interface ChunkOutcome {
  /** `skipped`: already counted, or its task ended (cancelled, failed, expired). */
  status: 'done' | 'skipped';
  succeeded: number;
  failed: number;
  /** The result lines, for a waiting `POST /predict`. */
  results?: ImageResult[];
}

/**
 * Runs one chunk: every image to a result line, the lines to the chunk's part, then the
 * commit that counts them once. Whatever fails before the commit leaves nothing counted,
 * so the chunk can simply run again; a part written twice is the same part.
 */
export class ChunkProcessor {
  constructor(
    private readonly tasks: TaskStore,
    private readonly results: ResultStore,
    private readonly pipeline: ImagePipeline,
    private readonly logger: Logger,
    private readonly metrics: WorkerMetrics,
    /** How often a running chunk looks whether its task was cancelled: a cancel stops its work within about this long. */
    private readonly cancelPollMs = 500,
  ) {}

  async process(chunk: ChunkJobData, options: { urgent: boolean }): Promise<ChunkOutcome> {
    const skipped: ChunkOutcome = { status: 'skipped', succeeded: 0, failed: 0 };
    const status = await this.tasks.status(chunk.taskId);
    const alreadyCounted = async () => !options.urgent && (await this.tasks.isCommitted(chunk.taskId, chunk.chunk));
    // A waiting client gets its result even from a re-run; batch chunks already counted are not redone.
    if (status === null || (isTerminal(status) && !options.urgent) || (await alreadyCounted())) {
      this.metrics.chunks.inc({ outcome: 'skipped' });
      return skipped;
    }
    await this.tasks.markRunning(chunk.taskId);

    const started = performance.now();
    const cancel = new AbortController();
    const watch = options.urgent ? undefined : setInterval(() => void this.abortIfEnded(chunk.taskId, cancel), this.cancelPollMs);
    let results: ImageResult[];
    try {
      results = await Promise.all(chunk.images.map((uri) => this.pipeline.classify(uri, chunk.model, chunk.topK, { urgent: options.urgent, signal: cancel.signal })));
    } catch (err) {
      if (cancel.signal.aborted) {
        this.logger.info('chunk dropped: its task has ended', { task_id: chunk.taskId, chunk: chunk.chunk });
        this.metrics.chunks.inc({ outcome: 'skipped' });
        return skipped;
      }
      cancel.abort(err); // the whole chunk runs again later: fetch nothing more for this run
      this.metrics.chunks.inc({ outcome: 'error' });
      throw err;
    } finally {
      clearInterval(watch);
    }
    const failed = results.filter((r) => 'error' in r).length;
    await this.results.writePart({ id: chunk.taskId, output: chunk.output }, chunk.chunk, results);
    const outcome = await this.tasks.commitChunk(chunk.taskId, chunk.chunk, { succeeded: results.length - failed, failed });
    const seconds = (performance.now() - started) / 1000;
    this.metrics.chunks.inc({ outcome: 'done' });
    this.metrics.chunkSeconds.observe(seconds);
    this.metrics.images.inc({ model: chunk.model, outcome: 'succeeded' }, results.length - failed);
    this.metrics.images.inc({ model: chunk.model, outcome: 'failed' }, failed);
    this.logger.info('chunk done', {
      task_id: chunk.taskId,
      chunk: chunk.chunk,
      images: results.length,
      failed,
      ms: Math.round(seconds * 1000),
      commit: outcome,
    });
    return { status: 'done', succeeded: results.length - failed, failed, results: options.urgent ? results : undefined };
  }

  private async abortIfEnded(taskId: string, cancel: AbortController): Promise<void> {
    try {
      const status = await this.tasks.status(taskId);
      if (status === null || isTerminal(status)) cancel.abort(new Error(`task ${taskId} has ended`));
    } catch {
      // Redis unreachable: keep working; the commit will tell.
    }
  }
}
