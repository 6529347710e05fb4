export { CONFIG_VARIABLES, isVariableSet, loadConfig } from './config.loader';
export type { Config, ExecutionProviderName } from './config.schema';
