export { buildVgg, VGG_INPUT_NAME, VGG_OUTPUT_NAME } from './vgg-builder';
export { planVgg, resolveVggOptions, vggParameterCount, VGG_INPUT_SIZE } from './vgg-config';
export type { ResolvedVggOptions, VggDepth, VggLayer, VggOptions, VggPlan } from './vgg-config';
export { SeededRandom } from './seeded-random';
export { writeVggModelFolder } from './vgg-model-folder';
export type { VggManifest, VggModelFolder, VggModelFolderOptions } from './vgg-model-folder';
export { quantizeClassifier, quantizeVgg, type QuantizeClassifierOptions, type QuantizeVggOptions } from './qdq-quantizer';
