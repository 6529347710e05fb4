import type { Config } from '@visionq/config';
import { ErrorCode, ModelError, modelLabels, UnavailableError, VisionqError, type Prediction } from '@visionq/api';
import { inputDims, writeNormalized, type PreprocessedImage } from '@visionq/imaging';
import type { Logger } from '@visionq/observability';
import { DynamicBatcher } from './dynamic-batcher';
import type { LoadedModel, ModelRegistry } from './model-registry';
import { softmaxInPlace, topK } from './postprocess';

/** The `batching` slice of the config; without `maxHoldMs` a partial batch never waits for upcoming images. */
export type BatchingOptions = Pick<Config['batching'], 'maxBatchSize' | 'maxQueueDelayMs' | 'preferredBatchSizes'> & Partial<Pick<Config['batching'], 'maxHoldMs'>>;

export interface EngineOptions {
  batching: BatchingOptions;
  /** Run each preferred batch size once per model in `start()`. */
  warmup: boolean;
  logger: Logger;
  /** Told of every batch served (not warm-up runs), with the version's ref: for metrics. */
  onBatch?: (model: string, size: number, seconds: number) => void;
}

/**
 * Turns preprocessed images into predictions. One dynamic batcher per model version, so
 * images from every caller (every task) share batches and a batch never mixes versions. Runs
 * happen in each model's session thread; this thread only fills batch buffers.
 */
export class InferenceEngine {
  /** Per loaded version; made on its first image, dropped when the registry retires it. */
  private readonly batchers = new Map<LoadedModel, DynamicBatcher<PreprocessedImage, Float32Array>>();
  /** Per model version: images callers are fetching or decoding right now, soon in its batcher. */
  private readonly upcoming = new Map<string, number>();
  private stopped?: Promise<void>;

  constructor(
    private readonly registry: ModelRegistry,
    private readonly options: EngineOptions,
  ) {}

  /** Warms every model up at each batch size it will see most (when enabled). */
  async start(): Promise<void> {
    for (const model of this.registry.list()) await this.warmUp(model);
  }

  /** Runs `model` once at each batch size it will see most (when warm-up is enabled): before it serves. */
  async warmUp(model: LoadedModel): Promise<void> {
    if (!this.options.warmup) return;
    const sizes = this.warmupSizes(model);
    const started = Date.now();
    for (const size of sizes) {
      const { height, width } = model.spec;
      await this.infer(model, new Float32Array(size * 3 * height * width), size);
    }
    this.options.logger.info('model warmed up', { ...modelLabels(model.ref), batch_sizes: sizes, ms: Date.now() - started });
  }

  /** Lets go of a retired version's batcher, finishing what it holds. */
  async drop(model: LoadedModel): Promise<void> {
    const batcher = this.batchers.get(model);
    this.batchers.delete(model);
    await batcher?.stop();
  }

  /**
   * Class probabilities of one image under a loaded version (or the one a spec names), the `k` most likely first.
   * Urgent images (a waiting client) go ahead of queued batch work.
   */
  async classify(modelOrSpec: LoadedModel | string, image: PreprocessedImage, k: number, options: { urgent?: boolean } = {}): Promise<Prediction[]> {
    const model = typeof modelOrSpec === 'string' ? this.registry.get(modelOrSpec) : modelOrSpec;
    const { height, width } = model.spec;
    if (image.height !== height || image.width !== width) {
      throw new VisionqError(ErrorCode.InvalidArgument, `image is ${image.width}x${image.height}, model "${model.ref}" takes ${width}x${height}`);
    }
    const probabilities = await this.batcherOf(model).enqueue(image, options);
    return topK(probabilities, k, model.labels);
  }

  /**
   * Runs `work` (fetching and decoding an image for the version `ref`) counted as upcoming,
   * so that a partial batch of that version may wait for it (up to `maxHoldMs`).
   */
  async preparing<T>(ref: string, work: () => Promise<T>): Promise<T> {
    this.upcoming.set(ref, (this.upcoming.get(ref) ?? 0) + 1);
    try {
      return await work();
    } finally {
      const left = this.upcoming.get(ref)! - 1;
      if (left > 0) this.upcoming.set(ref, left);
      else this.upcoming.delete(ref);
    }
  }

  /** Refuses new images, finishes those queued. Idempotent. Sessions stay with the registry. */
  stop(): Promise<void> {
    this.stopped ??= Promise.all([...this.batchers.values()].map((b) => b.stop())).then(() => undefined);
    return this.stopped;
  }

  private batcherOf(model: LoadedModel): DynamicBatcher<PreprocessedImage, Float32Array> {
    let batcher = this.batchers.get(model);
    if (batcher) return batcher;
    if (this.stopped) throw new UnavailableError('the inference engine is stopping');
    const maxBatchSize = Math.min(this.options.batching.maxBatchSize, model.fixedBatchSize ?? Infinity);
    batcher = new DynamicBatcher((images) => this.runBatch(model, images), {
      maxBatchSize,
      maxQueueDelayMs: this.options.batching.maxQueueDelayMs,
      preferredBatchSizes: this.options.batching.preferredBatchSizes.filter((n) => n <= maxBatchSize),
      maxConcurrentBatches: 1,
      // On a GPU a full batch waits in the session thread behind the running one, so
      // the device never idles for a round trip. On the CPU the model already uses
      // every core: filling the next batch meanwhile would slow the running one.
      maxBatchesAhead: model.session.provider === 'cpu' ? 0 : 1,
      maxHoldMs: this.options.batching.maxHoldMs ?? 0,
      upcoming: () => this.upcoming.get(model.ref) ?? 0,
    });
    this.batchers.set(model, batcher);
    return batcher;
  }

  private warmupSizes(model: LoadedModel): number[] {
    const max = Math.min(this.options.batching.maxBatchSize, model.fixedBatchSize ?? Infinity);
    const preferred = this.options.batching.preferredBatchSizes.filter((n) => n <= max);
    return preferred.length > 0 ? preferred : [max];
  }

  private async runBatch(model: LoadedModel, images: PreprocessedImage[]): Promise<Float32Array[]> {
    const { height, width } = model.spec;
    const size = 3 * height * width;
    const input = new Float32Array(images.length * size);
    images.forEach((image, i) => writeNormalized(image, model.spec, input, i * size));
    const started = performance.now();
    const rows = await this.infer(model, input, images.length);
    this.options.onBatch?.(model.ref, images.length, (performance.now() - started) / 1000);
    return rows;
  }

  /** One session run; returns a probability row per image. */
  private async infer(model: LoadedModel, input: Float32Array, batch: number): Promise<Float32Array[]> {
    const output = await model.session.run(model.manifest.input.name, input, inputDims(model.spec, batch), model.manifest.output.name);
    const classes = model.labels.length;
    if (output.dims.length !== 2 || output.dims[0] !== batch || output.dims[1] !== classes) {
      throw new ModelError(`model "${model.ref}": output has shape [${output.dims.join(',')}], expected [${batch},${classes}] (one row per image, one column per label)`, [
        { field: 'labels', message: 'class count differs from the graph output' },
      ]);
    }
    const rows: Float32Array[] = [];
    for (let i = 0; i < batch; i++) {
      const row = output.data.subarray(i * classes, (i + 1) * classes);
      rows.push(model.manifest.output.activation === 'softmax' ? softmaxInPlace(row) : row);
    }
    return rows;
  }
}
