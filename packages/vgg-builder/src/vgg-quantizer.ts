import { quantizeClassifier, type QuantizeClassifierOptions } from '@visionq/quantization';
import { buildVgg } from './vgg-builder';
import type { VggOptions } from './vgg-config';

/** {@link quantizeClassifier} for a VGG: its ONNX bytes, or the options `buildVgg` builds it from. */
export async function quantizeVgg(
  model: Uint8Array | VggOptions,
  calibration: Iterable<Float32Array> | AsyncIterable<Float32Array>,
  options: QuantizeVggOptions = {},
): Promise<Uint8Array> {
  return quantizeClassifier(model instanceof Uint8Array ? model : buildVgg(model), calibration, options);
}

export type QuantizeVggOptions = QuantizeClassifierOptions;
