import { ErrorCode, ImageError } from '@visionq/errors';
import type { ImagePreprocessor } from '@visionq/imaging';
import type { InferenceEngine } from './inference-engine';
import type { ModelRegistry } from './model-registry';
import type { Prediction } from './postprocess';

/** One image's outcome: a result line of DESIGN.md. */
export type ImageResult =
  | { image: string; predictions: Prediction[] }
  | { image: string; error: { code: ErrorCode; message: string } };

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
    const model = this.registry.get(modelName);
    let pixels;
    try {
      pixels = await this.preprocessor.preprocess(bytes, model.spec);
    } catch (err) {
      if (err instanceof ImageError) return imageError(image, err.code, err.message);
      throw err;
    }
    return { image, predictions: await this.engine.classify(model.name, pixels, k) };
  }
}

export function imageError(image: string, code: ErrorCode, message: string): ImageResult {
  return { image, error: { code, message } };
}
