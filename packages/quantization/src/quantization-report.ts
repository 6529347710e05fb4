import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';

/** How an INT8 model compares with the float model it came from, on the same images. */
export interface QuantizationReport {
  images: number;
  /** Images whose INT8 top-1 class is the float top-1 class. */
  top1Agree: number;
  /** Images whose float top-1 class is among the INT8 top 5 (top `min(5, classes)`). */
  top5Agree: number;
  /** Mean over images of the cosine between the two output vectors (logits, or probabilities for a model that returns them). */
  meanCosine: number;
  /** Images per second of each, measured in alternating rounds in this process. */
  fp32ImagesPerSecond: number;
  int8ImagesPerSecond: number;
}

export interface CompareOptions {
  /** The model's input name, and its output's (the [N, classes] tensor). */
  inputName: string;
  outputName: string;
  /** One image's dimensions, e.g. [3, 224, 224]. */
  sampleDims: readonly number[];
  /** onnxruntime intra-op threads for both sessions; 0 = its default. */
  intraOpThreads?: number;
  /**
   * Timed rounds per model, each a pass over the images in batches of `batchSize`, after
   * one untimed pass: at least `minRounds` (default 3), and more until each model has run
   * `minSeconds` (default 1) or 100 rounds, so that a fast model is not timed on a blink.
   */
  minRounds?: number;
  minSeconds?: number;
  /** Default 16. */
  batchSize?: number;
}

/**
 * Runs both models on the same images and reports agreement and speed. The speed rounds
 * alternate (fp32, int8, fp32, …) so that both see the same machine, load and caches:
 * the ratio is what counts, the absolute figures move with the host.
 */
export async function compareClassifiers(fp32: Uint8Array, int8: Uint8Array, images: Float32Array, options: CompareOptions): Promise<QuantizationReport> {
  const { inputName, outputName, sampleDims, intraOpThreads = 0, minRounds = 3, minSeconds = 1, batchSize = 16 } = options;
  const size = sampleDims.reduce((a, b) => a * b, 1);
  const count = images.length / size;
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`images must hold n×${sampleDims.join('×')} values, got ${images.length}`);
  const sessionOptions: ort.InferenceSession.SessionOptions = intraOpThreads > 0 ? { intraOpNumThreads: intraOpThreads } : {};
  const sessions = [await ort.InferenceSession.create(fp32, sessionOptions), await ort.InferenceSession.create(int8, sessionOptions)] as const;
  try {
    /** One pass over every image, in batches; returns the outputs, concatenated. */
    const pass = async (session: ort.InferenceSession): Promise<{ outputs: Float32Array; classes: number }> => {
      const parts: Float32Array[] = [];
      for (let start = 0; start < count; start += batchSize) {
        const n = Math.min(batchSize, count - start);
        const feeds = { [inputName]: new ort.Tensor('float32', images.subarray(start * size, (start + n) * size), [n, ...sampleDims]) };
        parts.push((await session.run(feeds, [outputName]))[outputName]!.data as Float32Array);
      }
      const outputs = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
      parts.reduce((offset, p) => (outputs.set(p, offset), offset + p.length), 0);
      return { outputs, classes: outputs.length / count };
    };
    const [expected, actual] = [await pass(sessions[0]), await pass(sessions[1])];
    const seconds = [0, 0];
    let rounds = 0;
    for (; rounds < minRounds || (Math.min(...seconds) < minSeconds && rounds < 100); rounds++) {
      for (const which of [0, 1] as const) {
        const started = performance.now();
        await pass(sessions[which]);
        seconds[which]! += (performance.now() - started) / 1000;
      }
    }
    return {
      images: count,
      ...agreement(expected.outputs, actual.outputs, expected.classes),
      fp32ImagesPerSecond: (count * rounds) / seconds[0]!,
      int8ImagesPerSecond: (count * rounds) / seconds[1]!,
    };
  } finally {
    await Promise.all(sessions.map((s) => s.release()));
  }
}

function agreement(expected: Float32Array, actual: Float32Array, classes: number): Pick<QuantizationReport, 'top1Agree' | 'top5Agree' | 'meanCosine'> {
  const k = Math.min(5, classes);
  let top1Agree = 0;
  let top5Agree = 0;
  let cosines = 0;
  const images = expected.length / classes;
  for (let i = 0; i < images; i++) {
    const a = expected.subarray(i * classes, (i + 1) * classes);
    const b = actual.subarray(i * classes, (i + 1) * classes);
    const top = topClasses(b, k);
    const best = topClasses(a, 1)[0]!;
    if (top[0] === best) top1Agree++;
    if (top.includes(best)) top5Agree++;
    cosines += cosineSimilarity(a, b);
  }
  return { top1Agree, top5Agree, meanCosine: cosines / images };
}

function topClasses(values: Float32Array, k: number): number[] {
  return [...values.keys()].sort((x, y) => values[y]! - values[x]! || x - y).slice(0, k);
}

/** Cosine similarity of two logit vectors (1 when both are all zeros). */
export function cosineSimilarity(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return aa === 0 && bb === 0 ? 1 : ab / Math.sqrt(aa * bb);
}
