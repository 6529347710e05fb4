import { availableParallelism } from 'node:os';
import type { InferenceSession } from 'onnxruntime-node';

/** Execution providers visionq can ask onnxruntime for. */
export type ExecutionProviderName = 'cpu' | 'cuda' | 'tensorrt';

/** How a session is created. `Config['inference']` satisfies this shape. */
export interface SessionSettings {
  /**
   * Tried in order; the first that loads runs the model. `cpu` is always tried last.
   * A GPU provider that loads still hands the operators it lacks to the providers after it.
   */
  providers: ExecutionProviderName[];
  /** GPU for `cuda` and `tensorrt`. Default 0. */
  deviceId?: number;
  /** onnxruntime threads inside one operator; 0 = one per CPU available to the process. */
  intraOpThreads?: number;
  /** onnxruntime threads across operators; 0 = onnxruntime's default. */
  interOpThreads?: number;
  /** Default `all`. */
  graphOptimization?: 'disabled' | 'basic' | 'extended' | 'all';
}

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
