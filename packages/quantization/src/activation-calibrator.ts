import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { DataType, valueInfo } from './onnx-graph';

/** The range a tensor's quantisation must cover. */
export interface TensorRange {
  min: number;
  max: number;
}

/**
 * Runs the float model on every calibration batch with the named intermediate tensors
 * added as graph outputs, and returns each tensor's range. The graph input's range is
 * read from the batches themselves. Batches are NCHW float32 of the model's input shape,
 * any batch size.
 *
 * Ranges are min/max (onnxruntime's `MinMax` calibrator), except that with `percentile`
 * the top of a non-negative tensor (a ReLU output) is the value below which `percentile`
 * per cent of its values fall, so a few outliers do not coarsen the scale for the rest.
 */
export async function calibrateRanges(
  model: onnx.IModelProto,
  tensorNames: readonly string[],
  calibration: Iterable<Float32Array> | AsyncIterable<Float32Array>,
  percentile?: number,
): Promise<Map<string, TensorRange>> {
  const graph = model.graph!;
  const input = graph.input![0]!;
  const inputName = input.name!;
  const sampleDims = (input.type?.tensorType?.shape?.dim ?? []).slice(1).map((d) => Number(d.dimValue));
  const sampleSize = sampleDims.reduce((a, b) => a * b, 1);
  if (sampleDims.length === 0 || !(sampleSize > 0)) throw new TypeError(`model input ${inputName} needs fixed non-batch dimensions to calibrate`);

  const outputs = tensorNames.filter((name) => name !== inputName);
  const graphOutputs = new Set(graph.output!.map((o) => o.name!));
  const added = outputs.filter((name) => !graphOutputs.has(name)).map((name) => valueInfo(name, DataType.FLOAT));
  const withOutputs = { ...model, graph: { ...graph, output: [...graph.output!, ...added] } };
  const session = await ort.InferenceSession.create(onnx.ModelProto.encode(withOutputs).finish());
  const ranges = new Map<string, TensorRange>(tensorNames.map((name) => [name, { min: Infinity, max: -Infinity }]));
  const histograms = new Map(outputs.map((name) => [name, new Histogram()]));
  let batches = 0;
  try {
    for await (const batch of calibration) {
      if (!(batch instanceof Float32Array) || batch.length === 0 || batch.length % sampleSize !== 0) {
        throw new TypeError(`calibration batch ${batches} must be a Float32Array of n×${sampleDims.join('×')} values`);
      }
      if (ranges.has(inputName)) widen(ranges.get(inputName)!, batch);
      const feeds = { [inputName]: new ort.Tensor('float32', batch, [batch.length / sampleSize, ...sampleDims]) };
      const results = await session.run(feeds, outputs);
      for (const name of outputs) {
        const values = results[name]!.data as Float32Array;
        const range = ranges.get(name)!;
        widen(range, values);
        if (percentile !== undefined && range.min >= 0) histograms.get(name)!.add(values, range.max);
      }
      batches++;
    }
  } finally {
    await session.release();
  }
  if (batches === 0) throw new RangeError('calibration must hold at least one batch');
  if (percentile !== undefined) {
    for (const name of outputs) if (ranges.get(name)!.min >= 0) ranges.get(name)!.max = histograms.get(name)!.quantile(percentile / 100);
  }
  return ranges;
}

function widen(range: TensorRange, values: Float32Array): void {
  let { min, max } = range;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  range.min = min;
  range.max = max;
}

const BINS = 2048;

/**
 * Counts of non-negative values in BINS equal bins over [0, top]. When a batch raises
 * the top, the old counts move to the coarser bins (as onnxruntime's histogram collector
 * does), so one pass over the calibration data is enough.
 */
class Histogram {
  private counts = new Float64Array(BINS);
  private top = 0;
  private total = 0;

  add(values: Float32Array, max: number): void {
    if (max > this.top) this.rebin(max);
    const perValue = BINS / this.top;
    const counts = this.counts;
    for (let i = 0; i < values.length; i++) counts[Math.min(BINS - 1, Math.floor(values[i]! * perValue))]++;
    this.total += values.length;
  }

  /** The value below which fraction `q` of the counted values fall. */
  quantile(q: number): number {
    let seen = 0;
    for (let i = 0; i < BINS; i++) {
      seen += this.counts[i]!;
      if (seen >= q * this.total) return ((i + 1) * this.top) / BINS;
    }
    return this.top;
  }

  private rebin(top: number): void {
    const old = this.counts;
    this.counts = new Float64Array(BINS);
    for (let i = 0; i < BINS; i++) {
      if (old[i]! > 0) this.counts[Math.min(BINS - 1, Math.floor((((i + 0.5) * this.top) / BINS / top) * BINS))]! += old[i]!;
    }
    this.top = top;
  }
}
