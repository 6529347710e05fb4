export { loadConfig, CONFIG_VARIABLES } from './config.loader';
export type { Config, ExecutionProviderName, GraphOptimizationLevel } from './config.schema';
