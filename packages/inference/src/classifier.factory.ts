import type { Config } from '@visionq/config';
import { ImagePreprocessor } from '@visionq/imaging';
import { ModelCatalog, type CatalogChanges } from '@visionq/models';
import type { Logger } from '@visionq/observability';
import { ImageClassifier } from './image-classifier';
import { InferenceEngine } from './inference-engine';
import { ModelRegistry } from './model-registry';
import { onnxSessionBackend } from './session-backend';
import { SimulatedSession } from './simulated-session';

/** The registry → engine → classifier chain, and the one way to take it down. */
export interface Classifier {
  readonly registry: ModelRegistry;
  readonly engine: InferenceEngine;
  readonly classifier: ImageClassifier;
  /**
   * Reads the models directory again: new versions load (and warm up) before they serve, a
   * changed one is replaced once loaded. `gone` are versions removed from the directory,
   * still served: the caller stops taking their work, then calls `registry.remove`.
   */
  reload(): Promise<ModelReload>;
  /** Refuses new images, finishes those queued, releases the sessions. Idempotent. */
  close(): Promise<void>;
}

export interface ModelReload {
  changes: CatalogChanges;
  added: string[];
  gone: string[];
}

export interface OpenClassifierOptions {
  logger: Logger;
  /** Load only these models (`NAME` or `NAME@VERSION`); default: every model of `config.models.dir`. */
  only?: string[];
  /** Run each preferred batch size once per model before serving; default `config.inference.warmup`. */
  warmup?: boolean;
  /** Takes a model folder that fails its checks, which is skipped; without it, start-up fails. */
  onRefused?: (dir: string, err: Error) => void;
  /** Told of every batch served: for metrics. */
  onBatch?: (model: string, size: number, seconds: number) => void;
}

/**
 * Loads the models and starts the engine that batches their images (warming them up when
 * configured). Sessions are onnxruntime's, unless the bench-only `bench.simulatedDevice` is set.
 */
export async function openClassifier(
  config: Pick<Config, 'models' | 'inference' | 'batching' | 'imaging'> & Partial<Pick<Config, 'bench'>>,
  options: OpenClassifierOptions,
): Promise<Classifier> {
  const simulated = config.bench?.simulatedDevice;
  if (simulated) options.logger.warn('serving on a simulated device (VISIONQ_BENCH_SIMULATED_DEVICE, bench only): predictions are not real', { ms_per_batch: simulated.msPerBatch, ms_per_image: simulated.msPerImage });
  const backend = simulated ? SimulatedSession.backend(simulated) : onnxSessionBackend;
  const { onRefused } = options;
  const catalog = await ModelCatalog.load(config.models.dir, undefined, onRefused && (({ dir, error }) => onRefused(dir, error)));
  const registry = await ModelRegistry.load(catalog, config.inference, { only: options.only, logger: options.logger, backend, ...(onRefused ? { onRefused: (folder, err) => onRefused(folder.dir, err) } : {}) });
  const engine = new InferenceEngine(registry, {
    batching: config.batching,
    warmup: options.warmup ?? config.inference.warmup,
    logger: options.logger,
    onBatch: options.onBatch,
  });
  registry.hooks = { loaded: (model) => engine.warmUp(model), retired: (model) => engine.drop(model) };
  try {
    await engine.start();
  } catch (err) {
    await registry.release();
    throw err;
  }
  const preprocessor = new ImagePreprocessor(config.imaging);
  const classifier = new ImageClassifier(registry, preprocessor, engine);
  let closing: Promise<void> | undefined;
  return {
    registry,
    engine,
    classifier,
    async reload() {
      const changes = await catalog.reload();
      return { changes, ...(await registry.sync(changes)) };
    },
    close: () =>
      (closing ??= (async () => {
        await engine.stop();
        await registry.release();
        await preprocessor.close();
      })()),
  };
}
