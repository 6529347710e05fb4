import { isTerminal, modelLabels, type ImageResult } from '@visionq/api';
import type { Logger, WorkerMetrics } from '@visionq/observability';
import { jobLogFields, type ChunkJobData } from './queue.jobs';
import { ResultStore } from './result.store';
import type { TaskStore } from './task.store';

/** What turns one image URI into its result line: the worker's image pipeline. */
export interface ImageSource {
  /**
   * A bad image is its own error line; a fault another attempt may cure (the store
   * unreachable) rejects. `signal` aborts images not yet fetched; the call then rejects
   * with its reason.
   */
  classify(uri: string, model: string, topK: number, options: { urgent: boolean; signal?: AbortSignal }): Promise<ImageResult>;
}

export interface ChunkOutcome {
  /** `skipped`: already counted, or its task ended (cancelled, failed, expired). */
  status: 'done' | 'skipped';
  succeeded: number;
  failed: number;
  /** The result lines, for a waiting `POST /predict`. */
  results?: ImageResult[];
}

/**
 * Runs one chunk: claim (its task is live and the chunk not yet counted), every image to
 * a result line, the lines to the chunk's part, then the commit that counts them once.
 * Whatever fails before the commit leaves nothing counted, so the chunk can simply run
 * again; a part written twice is the same part.
 */
export class ChunkProcessor {
  constructor(
    private readonly tasks: TaskStore,
    private readonly results: ResultStore,
    private readonly images: ImageSource,
    private readonly logger: Logger,
    private readonly metrics: WorkerMetrics,
    /** How often a running chunk looks whether its task was cancelled: a cancel stops its work within about this long. */
    private readonly cancelPollMs = 500,
  ) {}

  async process(chunk: ChunkJobData, options: { urgent: boolean }): Promise<ChunkOutcome> {
    const log = this.logger.child({ ...jobLogFields(chunk), chunk: chunk.index, ...modelLabels(chunk.model), ...(chunk.round ? { round: chunk.round } : {}) });
    const claimed = await this.claim(chunk, options.urgent);
    if (!claimed) {
      this.metrics.chunks.inc({ outcome: 'skipped' });
      return { status: 'skipped', succeeded: 0, failed: 0 };
    }
    const started = performance.now();
    const task = { id: chunk.taskId, output: chunk.output };
    // A rerun keeps the lines that succeeded and runs the failed ones again.
    const previous = chunk.rerunFailed ? await this.results.readPart(task, chunk.index, claimed.partRound) : null;
    const cancel = new AbortController();
    const watch = options.urgent ? undefined : setInterval(() => void this.abortIfEnded(chunk.taskId, cancel, log), this.cancelPollMs);
    const classify = (uri: string) => this.images.classify(uri, chunk.model, chunk.topK, { urgent: options.urgent, signal: cancel.signal });
    let results: ImageResult[];
    try {
      results = await Promise.all(previous ? previous.map((line) => ('error' in line ? classify(line.image) : line)) : chunk.images.map(classify));
    } catch (err) {
      if (cancel.signal.aborted) {
        log.info('chunk dropped: its task has ended');
        this.metrics.chunks.inc({ outcome: 'skipped' });
        return { status: 'skipped', succeeded: 0, failed: 0 };
      }
      cancel.abort(err); // the whole chunk runs again later: fetch nothing more for this run
      this.metrics.chunks.inc({ outcome: 'error' });
      throw err;
    } finally {
      clearInterval(watch);
    }
    const failed = results.filter((r) => 'error' in r).length;
    const succeeded = results.length - failed;
    const round = chunk.rerunFailed ? chunk.round! : 0;
    await this.results.writePart(task, chunk.index, results, round);
    const outcome = chunk.rerunFailed ? await this.tasks.recommitChunk(chunk.taskId, chunk.index, round, failed) : await this.tasks.commitChunk(chunk.taskId, chunk.index, { succeeded, failed });
    const seconds = (performance.now() - started) / 1000;
    // Of a rerun, only the images run again count: those that failed before.
    const ran = previous ? previous.filter((line) => 'error' in line).length : results.length;
    this.metrics.chunks.inc({ outcome: 'done' });
    this.metrics.chunkSeconds.observe(seconds);
    this.metrics.images.inc({ ...modelLabels(chunk.model), outcome: 'succeeded' }, ran - failed);
    this.metrics.images.inc({ ...modelLabels(chunk.model), outcome: 'failed' }, failed);
    log.info(previous ? 'failed images run again' : 'chunk done', { images: ran, failed, ms: Math.round(seconds * 1000), commit: outcome });
    return { status: 'done', succeeded, failed, results: options.urgent ? results : undefined };
  }

  /**
   * Whether to run the chunk, marking its task running when so; and, for a rerun of its
   * failed images, the round of the part it reruns. A waiting client gets its result even
   * from a re-run; a batch chunk already counted (or, for a rerun, already rewritten for its
   * round), or of an ended task, is not redone.
   */
  private async claim(chunk: ChunkJobData, urgent: boolean): Promise<{ partRound: number } | null> {
    const status = await this.tasks.status(chunk.taskId);
    if (status === null) return null;
    let partRound = 0;
    if (!urgent) {
      if (isTerminal(status)) return null;
      if (chunk.rerunFailed) {
        partRound = (await this.tasks.partVersions(chunk.taskId)).get(chunk.index) ?? 0;
        if (partRound >= chunk.round!) return null;
      } else if (await this.tasks.isCommitted(chunk.taskId, chunk.index)) {
        return null;
      }
    }
    await this.tasks.markRunning(chunk.taskId);
    return { partRound };
  }

  private async abortIfEnded(taskId: string, cancel: AbortController, log: Logger): Promise<void> {
    try {
      const status = await this.tasks.status(taskId);
      if (status === null || isTerminal(status)) cancel.abort(new Error(`task ${taskId} has ended`));
    } catch (err) {
      // Keep working: the commit will tell whether Redis is back.
      log.debug('cancel check failed', { error: (err as Error).message });
    }
  }
}
