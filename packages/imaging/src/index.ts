export { IMAGENET_SPEC } from './preprocess-spec';
export type { Interpolation, PreprocessSpec, PreprocessedImage } from './preprocess-spec';
export { ImagePreprocessor } from './image-preprocessor';
export type { ImageLimits } from './image-preprocessor';
export { inputDims, writeNormalized } from './normalize';
export { PixelBudget } from './pixel-budget';
export { configureDecoder } from './decoder-settings';
