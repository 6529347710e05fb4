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
  /** onnxruntime threads inside one operator; 0 = onnxruntime's default (one per core). */
  intraOpThreads?: number;
  /** onnxruntime threads across operators; 0 = onnxruntime's default. */
  interOpThreads?: number;
  /** Default `all`. */
  graphOptimization?: 'disabled' | 'basic' | 'extended' | 'all';
}
