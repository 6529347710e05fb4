import { imageError, ImageError, type ImageResult } from '@visionq/api';
import type { ImagePreprocessor, PreprocessedImage } from '@visionq/imaging';
import type { InferenceEngine } from './inference-engine';
import type { ModelRegistry } from './model-registry';

/** An image decoded and preprocessed for one model, waiting for inference. */
export interface PreparedImage {
  image: string;
  model: string;
  pixels: PreprocessedImage;
}

/**
 * Bytes in, result line out. A problem with the image itself (undecodable, too large,
 * unsupported) becomes that image's error line; anything else (a failed inference, a
 * stopped engine) is thrown, because retrying elsewhere may succeed.
 */
export class ImageClassifier {
  constructor(
    private readonly registry: ModelRegistry,
    private readonly preprocessor: ImagePreprocessor,
    private readonly engine: InferenceEngine,
  ) {}

  async classify(image: string, bytes: Buffer, modelName: string, k: number): Promise<ImageResult> {
    const prepared = await this.prepare(image, bytes, modelName);
    return 'pixels' in prepared ? this.infer(prepared, k) : prepared;
  }

  /**
   * The CPU half: decode and preprocess for `modelName`. Callers that bound memory by
   * images in flight hold their slot across this step only; the pixels left are small.
   */
  async prepare(image: string, bytes: Buffer, modelName: string): Promise<PreparedImage | ImageResult> {
    const model = this.registry.get(modelName);
    try {
      return { image, model: model.name, pixels: await this.preprocessor.preprocess(bytes, model.spec) };
    } catch (err) {
      if (err instanceof ImageError) return imageError(image, err.code, err.message);
      throw err;
    }
  }

  /** Runs `work` (fetching and preparing an image for `modelName`) as one the model's partial batches may wait for. */
  preparing<T>(modelName: string, work: () => Promise<T>): Promise<T> {
    return this.engine.preparing(modelName, work);
  }

  /** The model half: batched inference of a prepared image. */
  async infer(prepared: PreparedImage, k: number, options: { urgent?: boolean } = {}): Promise<ImageResult> {
    return { image: prepared.image, predictions: await this.engine.classify(prepared.model, prepared.pixels, k, options) };
  }
}
