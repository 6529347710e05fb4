export { buildVgg } from './vgg-builder';
export { planVgg, vggParameterCount } from './vgg-config';
export type { VggDepth, VggLayer, VggOptions, VggPlan } from './vgg-config';
export { SeededRandom } from './seeded-random';
export { writeVggModelFolder } from './vgg-model-folder';
export type { VggManifest, VggModelFolder, VggModelFolderOptions } from './vgg-model-folder';
export { quantizeVgg, type QuantizeVggOptions } from './vgg-quantizer';
