import { loadConfig, type Config } from '@visionq/config';
import { ImagePreprocessor } from '@visionq/imaging';
import { ImageClassifier, InferenceEngine, ModelRegistry } from '@visionq/inference';
import { createLogger, type Logger } from '@visionq/observability';

/** The engine wired for one local command: no Redis, no gateway. */
export interface LocalRuntime {
  config: Config;
  logger: Logger;
  registry: ModelRegistry;
  engine: InferenceEngine;
  classifier: ImageClassifier;
  close(): Promise<void>;
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
  const logger = createLogger({ level: process.env.LOG_LEVEL ? config.log.level : 'warn', format: 'pretty' });
  const registry = await ModelRegistry.load(config.models.dir, config.inference, { only: options.allModels ? undefined : [config.models.defaultModel], logger });
  const engine = new InferenceEngine(registry, { batching: config.batching, warmup: false, logger });
  const classifier = new ImageClassifier(registry, new ImagePreprocessor(config.imaging), engine);
  return {
    config,
    logger,
    registry,
    engine,
    classifier,
    async close() {
      await engine.stop();
      await registry.release();
    },
  };
}
