export { manifestSchema } from './model.manifest';
export type { ModelManifest } from './model.manifest';
export { readModelFolder } from './model.folder';
export type { ModelFolder } from './model.folder';
export { ModelCatalog, modelNotFound, readModelCatalog } from './model.catalog';
export type { DeclaredModel } from './model.catalog';
