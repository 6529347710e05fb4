import { ErrorCode, imageError, VisionqError, type ImageResult } from '@visionq/api';
import { ObjectAccessDeniedError, ObjectNotFoundError, ObjectTooLargeError, type ObjectStore } from '@visionq/object-store';
import type { ConcurrencyGate } from './concurrency-gate';
import { ranBy, type ImageClassifier } from './image-classifier';

/**
 * One image from URI to result line: fetch and preprocess under the gate (which bounds
 * the bytes and pixels held), then inference through the engine's shared batcher, so
 * images of every chunk in flight, from every task, share batches.
 *
 * An image the store does not have, refuses, holds too large or cannot address becomes
 * that image's error line; a store that cannot be reached throws, so the chunk is retried.
 */
/** Told how long each image's stages took, and of each error line, with the version's ref: for metrics. */
export interface PipelineObserver {
  fetched(model: string, seconds: number): void;
  decoded(model: string, seconds: number): void;
  failed(model: string, code: ErrorCode): void;
}

export class ImagePipeline {
  constructor(
    private readonly store: ObjectStore,
    private readonly classifier: ImageClassifier,
    private readonly gate: ConcurrencyGate,
    private readonly maxImageBytes: number,
    private readonly observer?: PipelineObserver,
  ) {}

  /**
   * `model` is the version's ref (`NAME@VERSION`) or a name. `signal` aborts images not yet
   * fetched (their chunk's task was cancelled); the call then rejects with its reason.
   */
  async classify(uri: string, model: string, k: number, options: { urgent?: boolean; signal?: AbortSignal } = {}): Promise<ImageResult> {
    return this.classifier.use(model, async (loaded) => {
      const prepared = await this.gate.run(async () => {
        options.signal?.throwIfAborted();
        return this.classifier.preparing(loaded.ref, async () => {
          let started = performance.now();
          const bytes = await this.fetch(uri);
          this.observer?.fetched(loaded.ref, (performance.now() - started) / 1000);
          if (!Buffer.isBuffer(bytes)) return ranBy(loaded, bytes);
          started = performance.now();
          const prepared = await this.classifier.prepare(uri, bytes, loaded);
          this.observer?.decoded(loaded.ref, (performance.now() - started) / 1000);
          return prepared;
        });
      }, options);
      const result = 'pixels' in prepared ? await this.classifier.infer(prepared, k, options) : prepared;
      if ('error' in result) this.observer?.failed(loaded.ref, result.error.code);
      return result;
    });
  }

  private async fetch(uri: string): Promise<Buffer | ImageResult> {
    try {
      return await this.store.getBytes(uri, this.maxImageBytes);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) return imageError(uri, ErrorCode.ImageNotFound, `no object at ${uri}`);
      if (err instanceof ObjectTooLargeError) return imageError(uri, ErrorCode.ImageTooLarge, `image is ${err.size} bytes, over MAX_IMAGE_BYTES=${err.limit}`);
      if (err instanceof ObjectAccessDeniedError) return imageError(uri, ErrorCode.Forbidden, `the store refused access to ${uri}`);
      // A key this store cannot hold (one escaping a local store's folder, say) names no image.
      if (err instanceof VisionqError && err.code === ErrorCode.InvalidArgument) return imageError(uri, ErrorCode.InvalidArgument, err.message);
      throw err;
    }
  }
}
