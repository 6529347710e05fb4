import { isVariableSet, loadConfig, type Config } from '@visionq/config';
import { openClassifier, type Classifier } from '@visionq/inference';
import { createLogger, type Logger } from '@visionq/observability';

/**
 * The engine wired for one local command: no Redis, no gateway. Commands import this file
 * when they run, so that the commands that talk to a gateway start without loading it.
 */
export interface LocalRuntime extends Classifier {
  config: Config;
  logger: Logger;
}

export interface RuntimeOptions {
  /** Overrides MODELS_DIR. */
  modelsDir?: string;
  /** The model to load; default DEFAULT_MODEL. */
  model?: string;
  /** Load every model of the models directory instead. */
  allModels?: boolean;
}

/**
 * Loads config from the environment (overridden by flags) and only the models the
 * command needs. Warm-up is skipped: a one-shot command pays for it and gains nothing.
 */
export async function openRuntime(options: RuntimeOptions): Promise<LocalRuntime> {
  const config = loadConfig();
  if (options.modelsDir) config.models.dir = options.modelsDir;
  if (options.model) config.models.defaultModel = options.model;
  // A command's output is its own: warnings only, unless LOG_LEVEL asks for more.
  const logger = createLogger({ level: isVariableSet('LOG_LEVEL') ? config.log.level : 'warn', format: 'pretty' });
  const classifier = await openClassifier(config, { logger, only: options.allModels ? undefined : [config.models.defaultModel], warmup: false });
  return { ...classifier, config, logger };
}
