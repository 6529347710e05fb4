import { setTimeout as sleep } from 'node:timers/promises';
import { UnavailableError, VisionqError, ErrorCode } from '@visionq/api';
import type { ModelFolder } from '@visionq/models';
import type { SessionOutput } from './model-session';
import type { Session, SessionBackend } from './session-backend';
import type { TensorInfo } from './session-protocol';

/** How long the simulated device takes for one batch: `msPerBatch + msPerImage × images`. */
export interface SimulatedDeviceTiming {
  msPerBatch: number;
  msPerImage: number;
}

/**
 * A stand-in for an accelerator, for the scale-out bench only (selected by the internal
 * `VISIONQ_BENCH_SIMULATED_DEVICE`): each batch takes a fixed time and no CPU (a timer,
 * not a loop), one batch at a time like one device, so a bench can put many workers on a
 * small machine and measure what the rest of the system costs.
 *
 * It reads no graph: its input and output are the ones the manifest declares, with a
 * dynamic batch axis. Every image gets the same logits, `-c` for class `c` (so class 0
 * first, each next class e times less likely): predictions a test can compute exactly and
 * no real model would give.
 */
export class SimulatedSession implements Session {
  readonly provider = 'simulated' as const;
  readonly fallbacks = [];
  readonly inputs: TensorInfo[];
  readonly outputs: TensorInfo[];
  private readonly classes: number;
  /** The device's queue: each run starts when the one before it has ended. */
  private tail: Promise<unknown> = Promise.resolve();
  private released?: Promise<void>;

  private constructor(
    folder: ModelFolder,
    private readonly timing: SimulatedDeviceTiming,
  ) {
    const { input, output } = folder.manifest;
    this.classes = folder.labels.length;
    this.inputs = [{ name: input.name, type: 'float32', shape: ['batch', input.channels, input.height, input.width] }];
    this.outputs = [{ name: output.name, type: 'float32', shape: ['batch', this.classes] }];
  }

  /** The backend that serves every model folder on a simulated device of this timing. */
  static backend(timing: SimulatedDeviceTiming): SessionBackend {
    if (!(timing.msPerBatch >= 0) || !(timing.msPerImage >= 0)) {
      throw new RangeError(`simulated device timing must be non-negative, got ${JSON.stringify(timing)}`);
    }
    return { create: async (folder) => new SimulatedSession(folder, timing) };
  }

  get alive(): boolean {
    return this.released === undefined;
  }

  run(inputName: string, _input: Float32Array, dims: number[], outputName: string): Promise<SessionOutput> {
    if (!this.alive) return Promise.reject(new UnavailableError('session released'));
    if (inputName !== this.inputs[0]!.name || outputName !== this.outputs[0]!.name) {
      return Promise.reject(new VisionqError(ErrorCode.InferenceFailed, `inference failed: the simulated model has input "${this.inputs[0]!.name}" and output "${this.outputs[0]!.name}"`));
    }
    const batch = dims[0]!;
    const result = this.tail.then(async () => {
      await sleep(this.timing.msPerBatch + this.timing.msPerImage * batch);
      const data = new Float32Array(batch * this.classes);
      for (let i = 0; i < data.length; i++) data[i] = 0 - (i % this.classes); // 0 - 0 is +0, -(0) would be -0
      return { data, dims: [batch, this.classes] };
    });
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Lets the runs already asked for end (as the real session finishes its queue's head), then refuses more. Idempotent. */
  release(): Promise<void> {
    this.released ??= this.tail.then(() => undefined);
    return this.released;
  }
}
