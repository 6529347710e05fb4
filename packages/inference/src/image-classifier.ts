import { imageError, ImageError, type ImageResult } from '@visionq/api';
import type { ImagePreprocessor, PreprocessedImage } from '@visionq/imaging';
import type { InferenceEngine } from './inference-engine';
import type { LoadedModel, ModelRegistry } from './model-registry';

/** An image decoded and preprocessed for one model version, waiting for inference. */
export interface PreparedImage {
  image: string;
  model: LoadedModel;
  pixels: PreprocessedImage;
}

/**
 * Bytes in, result line out. A problem with the image itself (undecodable, too large,
 * unsupported) becomes that image's error line; anything else (a failed inference, a
 * stopped engine) is thrown, because retrying elsewhere may succeed. Every line says which
 * model version it came from.
 */
export class ImageClassifier {
  constructor(
    private readonly registry: ModelRegistry,
    private readonly preprocessor: ImagePreprocessor,
    private readonly engine: InferenceEngine,
  ) {}

  async classify(image: string, bytes: Buffer, spec: string, k: number): Promise<ImageResult> {
    return this.use(spec, async (model) => {
      const prepared = await this.prepare(image, bytes, model);
      return 'pixels' in prepared ? this.infer(prepared, k) : prepared;
    });
  }

  /** Runs `work` (one image, from fetch to result line) with the version `spec` names: its session is not released before `work` ends. */
  use<T>(spec: string, work: (model: LoadedModel) => Promise<T>): Promise<T> {
    return this.registry.use(spec, work);
  }

  /** Runs `work` (fetching and preparing an image for the version `ref`) as one its partial batches may wait for. */
  preparing<T>(ref: string, work: () => Promise<T>): Promise<T> {
    return this.engine.preparing(ref, work);
  }

  /**
   * The CPU half: decode and preprocess for `model`. Callers that bound memory by images
   * in flight hold their slot across this step only; the pixels left are small.
   */
  async prepare(image: string, bytes: Buffer, model: LoadedModel): Promise<PreparedImage | ImageResult> {
    try {
      return { image, model, pixels: await this.preprocessor.preprocess(bytes, model.spec) };
    } catch (err) {
      if (err instanceof ImageError) return ranBy(model, imageError(image, err.code, err.message));
      throw err;
    }
  }

  /** The model half: batched inference of a prepared image. */
  async infer(prepared: PreparedImage, k: number, options: { urgent?: boolean } = {}): Promise<ImageResult> {
    return ranBy(prepared.model, { image: prepared.image, predictions: await this.engine.classify(prepared.model, prepared.pixels, k, options) });
  }
}

/** The line with the version that ran, after the image URI. */
export function ranBy(model: LoadedModel, line: ImageResult): ImageResult {
  const { image, ...outcome } = line;
  return { image, model: model.name, model_version: model.version, ...outcome } as ImageResult;
}
