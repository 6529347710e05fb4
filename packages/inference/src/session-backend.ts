import type { ExecutionProviderName } from '@visionq/config';
import type { ModelFolder } from '@visionq/models';
import { ModelSession, type SessionOutput } from './model-session';
import type { CreatedReply, TensorInfo } from './session-protocol';
import type { SessionSettings } from './session-settings';

/** What ran a model: an onnxruntime execution provider, or the bench's simulated device. */
export type SessionProvider = ExecutionProviderName | 'simulated';

/**
 * What the registry and the engine need of a loaded model's session. ModelSession
 * (onnxruntime in its own thread) is the real one; SimulatedSession stands in for a
 * device in the scale-out bench only.
 *
 * Contract (ModelSession's): runs complete in the order they were asked for, one at a
 * time; `run` may take ownership of `input`'s buffer; `release()` is idempotent and every
 * run asked for afterwards fails with an unavailable error.
 */
export interface Session {
  readonly provider: SessionProvider;
  /** Providers tried before `provider`, with why each failed to load. */
  readonly fallbacks: CreatedReply['fallbacks'];
  readonly inputs: TensorInfo[];
  readonly outputs: TensorInfo[];
  readonly alive: boolean;
  run(inputName: string, input: Float32Array, dims: number[], outputName: string): Promise<SessionOutput>;
  release(): Promise<void>;
}

/** Creates the session of one model folder: the registry's only way to get one. */
export interface SessionBackend {
  create(folder: ModelFolder, settings: SessionSettings): Promise<Session>;
}

/** The real backend: the folder's `model.onnx` on onnxruntime, with the providers of `settings`. */
export const onnxSessionBackend: SessionBackend = {
  create: (folder, settings) => ModelSession.create(folder.modelPath, settings),
};
