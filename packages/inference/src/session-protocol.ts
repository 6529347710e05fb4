/**
 * Messages between a ModelSession (caller's thread) and its session thread. Tensors
 * travel as ArrayBuffers; the caller transfers its input buffer, so it must not touch
 * that buffer after `run`.
 */
import type { ExecutionProviderName } from '@visionq/config';
import type { SessionSettings } from './session-settings';

export interface TensorInfo {
  name: string;
  /** `float32`, `int64`, … as onnxruntime names them. */
  type: string;
  /** Numbers for fixed dimensions, strings for symbolic ones (e.g. the batch axis). */
  shape: Array<number | string>;
}

export interface CreateRequest {
  kind: 'create';
  modelPath: string;
  settings: SessionSettings;
}

export interface RunRequest {
  kind: 'run';
  id: number;
  inputName: string;
  outputName: string;
  input: ArrayBuffer;
  dims: number[];
}

/** `release` frees the session, after any run in progress, and ends the thread. */
export type SessionRequest = CreateRequest | RunRequest | { kind: 'release' };

export interface CreatedReply {
  kind: 'created';
  provider: ExecutionProviderName;
  /** Providers tried before the one that loaded, with why each failed. */
  fallbacks: Array<{ provider: ExecutionProviderName; reason: string }>;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
}

export interface RunReply {
  kind: 'result';
  id: number;
  output: Float32Array;
  dims: number[];
}

export type SessionReply =
  | CreatedReply
  | RunReply
  | { kind: 'create_failed'; message: string }
  | { kind: 'run_failed'; id: number; message: string };
