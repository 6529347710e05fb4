export type { PreprocessSpec, PreprocessedImage } from './preprocess-spec';
