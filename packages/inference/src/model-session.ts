import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ErrorCode, UnavailableError, VisionqError } from '@visionq/api';
import type { CreatedReply, SessionReply, SessionRequest, TensorInfo } from './session-protocol';
import type { ExecutionProviderName } from '@visionq/config';
import type { SessionSettings } from './session-settings';

export interface SessionOutput {
  data: Float32Array;
  dims: number[];
}

interface PendingRun {
  resolve: (output: SessionOutput) => void;
  reject: (err: Error) => void;
}

/**
 * One onnxruntime session running in its own thread. Every native call stays behind
 * this class. Runs are queued in order; `release()` is idempotent and fails whatever
 * is still pending with an unavailable error.
 */
export class ModelSession {
  readonly provider: ExecutionProviderName;
  readonly fallbacks: CreatedReply['fallbacks'];
  readonly inputs: TensorInfo[];
  readonly outputs: TensorInfo[];
  private readonly pending = new Map<number, PendingRun>();
  private nextId = 1;
  private released?: Promise<void>;
  /** Why the thread is gone: set when it exits or fails; runs then fail at once. */
  private gone?: Error;

  private constructor(private readonly worker: Worker, created: CreatedReply) {
    this.provider = created.provider;
    this.fallbacks = created.fallbacks;
    this.inputs = created.inputs;
    this.outputs = created.outputs;
    worker.on('message', (message: SessionReply) => this.onMessage(message));
    worker.on('error', (err) => this.end(new UnavailableError(`session thread failed: ${err.message}`)));
    worker.on('exit', (code) => this.end(new UnavailableError(`session thread exited with code ${code}`)));
  }

  /** Loads `modelPath` in a new thread with the first provider of `settings` that loads. */
  static async create(modelPath: string, settings: SessionSettings): Promise<ModelSession> {
    const worker = new Worker(join(__dirname, 'session.worker.js'));
    // Only our own listeners may be removed: Worker keeps internal ones of its own.
    let onMessage!: (message: SessionReply) => void;
    let onError!: (err: Error) => void;
    let onExit!: (code: number) => void;
    try {
      const created = await new Promise<CreatedReply>((resolve, reject) => {
        onError = reject;
        onExit = (code) => reject(new Error(`session thread exited with code ${code}`));
        onMessage = (message) => {
          if (message.kind === 'created') resolve(message);
          else reject(new Error(message.kind === 'create_failed' ? message.message : `unexpected reply ${message.kind}`));
        };
        worker.once('error', onError).once('exit', onExit).once('message', onMessage);
        worker.postMessage({ kind: 'create', modelPath, settings } satisfies SessionRequest);
      });
      return new ModelSession(worker, created);
    } catch (err) {
      await worker.terminate();
      throw new VisionqError(ErrorCode.ModelInvalid, `cannot load ${modelPath}: ${(err as Error).message}`, [], { cause: err });
    } finally {
      worker.off('error', onError).off('exit', onExit).off('message', onMessage);
    }
  }

  /**
   * Runs the model on one float32 input. The input's buffer is transferred to the
   * session thread: the caller must not use `input` afterwards.
   */
  run(inputName: string, input: Float32Array, dims: number[], outputName: string): Promise<SessionOutput> {
    if (this.gone) return Promise.reject(this.gone);
    const id = this.nextId++;
    return new Promise<SessionOutput>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const buffer = wholeBuffer(input);
      const request: SessionRequest = { kind: 'run', id, inputName, outputName, input: buffer, dims };
      this.worker.postMessage(request, [buffer]);
    });
  }

  /** False once the session was released or its thread died: every run then fails. */
  get alive(): boolean {
    return this.gone === undefined;
  }

  release(): Promise<void> {
    this.released ??= this.shutdown();
    return this.released;
  }

  /**
   * The thread finishes the run in progress, releases the session and ends itself. It is
   * never terminated from outside: that aborts the process if onnxruntime is mid-run.
   */
  private async shutdown(): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage({ kind: 'release' } satisfies SessionRequest);
    this.end(new UnavailableError('session released'));
    await exited;
  }

  private onMessage(message: SessionReply): void {
    if (message.kind !== 'result' && message.kind !== 'run_failed') return;
    const run = this.pending.get(message.id);
    if (!run) return;
    this.pending.delete(message.id);
    if (message.kind === 'result') run.resolve({ data: message.output, dims: message.dims });
    else run.reject(new VisionqError(ErrorCode.InferenceFailed, `inference failed: ${message.message}`));
  }

  /** Marks the session gone (the first reason wins) and fails every pending run. */
  private end(reason: Error): void {
    this.gone ??= reason;
    for (const run of this.pending.values()) run.reject(this.gone);
    this.pending.clear();
  }
}

/** A typed array's own buffer when it spans all of it, else a copy that does. */
function wholeBuffer(array: Float32Array): ArrayBuffer {
  if (array.byteOffset === 0 && array.byteLength === array.buffer.byteLength && array.buffer instanceof ArrayBuffer) return array.buffer;
  return array.slice().buffer as ArrayBuffer;
}
