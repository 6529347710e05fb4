import { availableParallelism } from 'node:os';
import type { InferenceSession } from 'onnxruntime-node';
import type { Config, ExecutionProviderName } from '@visionq/config';

/**
 * How a session is created: the `inference` slice of the config, where only `providers`
 * is required (tried in order, the first that loads runs the model; a GPU provider that
 * loads still hands the operators it lacks to the providers after it). Defaults: device
 * 0, one intra-op thread per CPU available, onnxruntime's inter-op default, `all`.
 */
export type SessionSettings = Pick<Config['inference'], 'providers'> &
  Partial<Pick<Config['inference'], 'deviceId' | 'intraOpThreads' | 'interOpThreads' | 'graphOptimization'>>;

/**
 * The onnxruntime options for `settings`, asking for the providers of `chain` in order.
 * Every session visionq creates goes through here, so a benchmark's baseline can use
 * exactly what the engine uses.
 *
 * An intra-op thread count of 0 is resolved here rather than left to onnxruntime: its
 * automatic count also pins the pool threads to cores, which makes the sessions of one
 * process (one per model) and the thread that preprocesses images fight over the same
 * cores; measured here, a session thread ran VGG16 2–6% slower that way.
 */
export function onnxSessionOptions(settings: SessionSettings, chain: readonly ExecutionProviderName[] = settings.providers): InferenceSession.SessionOptions {
  const deviceId = settings.deviceId ?? 0;
  return {
    executionProviders: chain.map((name) => (name === 'cpu' ? 'cpu' : { name, deviceId })),
    intraOpNumThreads: settings.intraOpThreads || availableParallelism(),
    interOpNumThreads: settings.interOpThreads ?? 0,
    graphOptimizationLevel: settings.graphOptimization ?? 'all',
  };
}
