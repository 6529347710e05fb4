export { manifestSchema, modelMetricsSchema, VERSION } from './model.manifest';
export type { ModelManifest, ModelMetrics } from './model.manifest';
export { readModelFolder } from './model.folder';
export type { FolderPlacement, ModelFolder } from './model.folder';
export { ModelCatalog, modelNotFound } from './model.catalog';
export type { CatalogChanges, DeclaredModel, RefusedFolder } from './model.catalog';
export { watchModels } from './model.watcher';
export type { ModelWatch, ModelWatchOptions } from './model.watcher';
