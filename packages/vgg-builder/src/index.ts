export { buildVgg } from './vgg-builder';
export { planVgg, vggParameterCount } from './vgg-config';
export type { VggDepth, VggLayer, VggOptions, VggPlan } from './vgg-config';
export { SeededRandom } from './seeded-random';
export { writeVggModelFolder } from './vgg-model-folder';
export type { VggManifest, VggModelFolder, VggModelFolderOptions } from './vgg-model-folder';
export { quantizeVgg, type QuantizeVggOptions } from './vgg-quantizer';
// The general quantizer lives in @visionq/quantization; re-exported for the benchmarks that quantize the VGGs built here.
export { quantizeClassifier, type QuantizeClassifierOptions } from '@visionq/quantization';
