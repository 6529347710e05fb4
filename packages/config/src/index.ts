export { CONFIG_VARIABLES, isVariableSet, loadConfig } from './config.loader';
export type { Config, ExecutionProviderName } from './config.schema';
export { parseRedisUrl, REDIS_URL_FORMS } from './redis-url';
export type { RedisNode, RedisTarget } from './redis-url';
