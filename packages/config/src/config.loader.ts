import { readFileSync } from 'node:fs';
import { ConfigError, type ErrorDetail } from '@visionq/api';
import { VARIABLES, type Config, type VariableName } from './config.schema';

/** Names, defaults and descriptions of every user-facing variable (the internal, bench-only ones left out), for documentation and `--help`. */
export const CONFIG_VARIABLES = Object.entries(VARIABLES)
  .filter(([, v]) => !('internal' in v))
  .map(([name, v]) => ({ name, default: v.default, doc: v.doc }));

/**
 * Parses the configuration once. Values come from `env`, then from the JSON object in
 * the file named by `VISIONQ_CONFIG_FILE` (same variable names as keys), then from the
 * defaults. Every bad value is reported at once, each naming its variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const fromFile = readConfigFile(env.VISIONQ_CONFIG_FILE);
  const config: Record<string, Record<string, unknown>> = {};
  const problems: ErrorDetail[] = [];
  for (const name of Object.keys(VARIABLES) as VariableName[]) {
    const variable = VARIABLES[name];
    const raw = env[name] ?? fromFile[name] ?? variable.default;
    const parsed = variable.schema.safeParse(String(raw).trim());
    if (!parsed.success) {
      const why = parsed.error.issues.map((i) => i.message).join('; ');
      problems.push({ field: name, message: `${name}=${JSON.stringify(raw)} is invalid: ${why}` });
      continue;
    }
    const [section, key] = variable.path.split('.') as [string, string];
    (config[section] ??= {})[key] = parsed.data;
  }
  if (problems.length > 0) {
    throw new ConfigError(`invalid configuration: ${problems.map((p) => p.message).join(' | ')}`, problems);
  }
  // Every variable parsed at its path: the shape of Config by construction.
  const result = config as Config;
  const tooBig = result.batching.preferredBatchSizes.filter((n) => n > result.batching.maxBatchSize);
  if (tooBig.length > 0) {
    throw new ConfigError(`PREFERRED_BATCH_SIZES has sizes above MAX_BATCH_SIZE=${result.batching.maxBatchSize}: ${tooBig.join(',')}`, [
      { field: 'PREFERRED_BATCH_SIZES', message: 'every preferred size must be at most MAX_BATCH_SIZE' },
    ]);
  }
  return result;
}

function readConfigFile(path: string | undefined): Record<string, unknown> {
  if (!path) return {};
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`VISIONQ_CONFIG_FILE=${path} cannot be read: ${(err as Error).message}`, [{ field: 'VISIONQ_CONFIG_FILE', message: 'unreadable' }]);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`VISIONQ_CONFIG_FILE=${path} is not a JSON object: ${(err as Error).message}`, [{ field: 'VISIONQ_CONFIG_FILE', message: 'not a JSON object' }]);
  }
}

/** Whether `name` was given (in the environment or the config file) rather than left to its default. */
export function isVariableSet(name: VariableName, env: NodeJS.ProcessEnv = process.env): boolean {
  return env[name] !== undefined || readConfigFile(env.VISIONQ_CONFIG_FILE)[name] !== undefined;
}
