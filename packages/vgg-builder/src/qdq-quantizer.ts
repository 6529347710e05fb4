import type { onnx } from 'onnx-proto';
import { calibrateRanges, type TensorRange } from './activation-calibrator';
import { dimsOf, decodeModel, encodeModel, floatValues, intAttribute, node, tensor } from './onnx-graph';
import { buildVgg } from './vgg-builder';
import type { VggOptions } from './vgg-config';

/**
 * Static INT8 quantisation of a float image classifier into QDQ form, as onnxruntime's
 * `quantize_static(quant_format=QDQ, per_channel=True)` writes it. The model has one
 * input and is made of Conv, Gemm (transB=1, alpha=beta=1), Relu right after a Conv or
 * Gemm, MaxPool, AveragePool and Flatten; any other node is a TypeError naming it.
 *
 * - weights: int8, symmetric ([-127, 127], zero point 0), one scale per output channel
 *   (axis 0 of conv weights and of Gemm weights with transB=1); see `weightLimit` for
 *   the one exception;
 * - biases: int32 with scale input_scale × weight_scale[c], zero point 0;
 * - activations: uint8, asymmetric, one scale and zero point per tensor, from the range
 *   seen on the calibration images (widened to include 0);
 * - a Relu after Conv/Gemm is dropped: the QuantizeLinear after it has zero point 0 for a
 *   range that starts at 0, and clamps negatives exactly as the Relu did;
 * - MaxPool and Flatten keep their input's scale and zero point; AveragePool's output
 *   gets its own (its averages are rounded again anyway, and averaging narrows the range);
 * - a Conv/Gemm whose output is a graph output (the logits) stays float: DequantizeLinear
 *   inputs, float output.
 *
 * onnxruntime fuses each DQ → Conv → Q into QLinearConv, DQ → Gemm (→ Q) into QGemm,
 * DQ → AveragePool → Q into QLinearAveragePool, and runs MaxPool and Flatten on the uint8
 * tensors directly.
 */
export async function quantizeClassifier(
  model: Uint8Array,
  calibration: Iterable<Float32Array> | AsyncIterable<Float32Array>,
  options: QuantizeClassifierOptions = {},
): Promise<Uint8Array> {
  const { percentile, reduceRange = false } = options;
  if (percentile !== undefined && !(percentile > 50 && percentile <= 100)) throw new RangeError(`percentile must be in (50, 100], got ${percentile}`);
  const fp32 = decodeModel(model);
  const graph = fp32.graph!;
  const plan = planQuantization(graph);
  const ranges = await calibrateRanges({ ...fp32, graph: { ...graph, input: [plan.input] } }, [...plan.calibrated], calibration, percentile);
  const docString = [fp32.docString, 'INT8 QDQ (per-channel int8 weights, uint8 activations) by @visionq/vgg-builder.'].filter(Boolean).join(' ');
  return encodeModel(qdqGraph(graph, plan, ranges, reduceRange), docString);
}

/** {@link quantizeClassifier} for a VGG: its ONNX bytes, or the options `buildVgg` builds it from. */
export async function quantizeVgg(
  model: Uint8Array | VggOptions,
  calibration: Iterable<Float32Array> | AsyncIterable<Float32Array>,
  options: QuantizeVggOptions = {},
): Promise<Uint8Array> {
  return quantizeClassifier(model instanceof Uint8Array ? model : buildVgg(model), calibration, options);
}

export interface QuantizeClassifierOptions {
  /**
   * Top of each ReLU output's range: this percentile of its calibration values (e.g.
   * 99.999) instead of the maximum, so rare outliers do not coarsen its scale. Default:
   * the maximum (onnxruntime's MinMax calibration).
   */
  percentile?: number;
  /**
   * 7-bit weights ([-63, 63]) in every layer, onnxruntime's `reduce_range`: no u8×s8
   * saturation on x86 CPUs without VNNI, for a little precision. Worth it for very narrow
   * models (a few dozen channels: VGG widthDivisor 16), whose few weights per channel sit
   * near the int8 limits; VGG16 loses accuracy with it (cosine 0.9983 instead of 0.9994).
   * Default false: only layers reading a signed input (the image) get 7 bits (`weightLimit`).
   */
  reduceRange?: boolean;
}

export type QuantizeVggOptions = QuantizeClassifierOptions;

interface QuantizationPlan {
  /** The graph input (the image batch). */
  input: onnx.IValueInfoProto;
  /** Activations that get their own scale, in graph order (the graph input first). */
  calibrated: Set<string>;
  /** Relu nodes folded into the quantisation of their producer's output. */
  foldedRelu: Set<onnx.INodeProto>;
  /** A Conv/Gemm output renamed to its Relu's output. */
  rename: Map<string, string>;
  /** Tensors that share the scale of another (MaxPool, Flatten outputs). */
  sharesScaleWith: Map<string, string>;
}

/** Ops on uint8 tensors whose output keeps the input's scale and zero point. */
const PASS_THROUGH = new Set(['MaxPool', 'Flatten']);
/** Ops whose output gets its own calibrated scale (fused by onnxruntime into QLinear<op>). */
const OWN_SCALE = new Set(['AveragePool']);

function planQuantization(graph: onnx.IGraphProto): QuantizationPlan {
  const initializers = new Set(graph.initializer!.map((t) => t.name!));
  const inputs = graph.input!.filter((i) => !initializers.has(i.name!));
  if (inputs.length !== 1) throw new TypeError(`the model must have one input (the image batch), got ${inputs.map((i) => i.name).join(', ') || 'none'}`);
  const consumers = new Map<string, onnx.INodeProto[]>();
  for (const n of graph.node!) for (const i of n.input!) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  const graphOutputs = new Set(graph.output!.map((o) => o.name!));
  const plan: QuantizationPlan = { input: inputs[0]!, calibrated: new Set([inputs[0]!.name!]), foldedRelu: new Set(), rename: new Map(), sharesScaleWith: new Map() };
  for (const n of graph.node!) {
    const output = n.output![0]!;
    if (n.opType === 'Conv' || n.opType === 'Gemm') {
      if (n.opType === 'Gemm' && !isPlainGemm(n)) throw new TypeError(`node ${n.name}: only Gemm with transB=1, alpha=beta=1 can be quantized`);
      const next = consumers.get(output) ?? [];
      if (next.length === 1 && next[0]!.opType === 'Relu' && !graphOutputs.has(output) && !graphOutputs.has(next[0]!.output![0]!)) {
        plan.foldedRelu.add(next[0]!);
        plan.rename.set(output, next[0]!.output![0]!);
        plan.calibrated.add(next[0]!.output![0]!);
      } else if (!graphOutputs.has(output)) {
        plan.calibrated.add(output);
      }
    } else if (PASS_THROUGH.has(n.opType!)) {
      const source = n.input![0]!;
      plan.sharesScaleWith.set(output, plan.sharesScaleWith.get(source) ?? source);
    } else if (OWN_SCALE.has(n.opType!)) {
      plan.calibrated.add(output);
    } else if (n.opType === 'Relu') {
      if (!plan.foldedRelu.has(n)) throw new TypeError(`node ${n.name}: Relu is only supported as the sole reader of a Conv or Gemm output, and not as the graph output`);
    } else {
      throw new TypeError(`node ${n.name}: ${n.opType} is not supported by the INT8 quantizer (Conv, Gemm, Relu, MaxPool, AveragePool, Flatten are)`);
    }
  }
  return plan;
}

function isPlainGemm(n: onnx.INodeProto): boolean {
  const attr = (name: string) => n.attribute!.find((a) => a.name === name);
  return Number(attr('transB')?.i ?? 0) === 1 && Number(attr('transA')?.i ?? 0) === 0 && (attr('alpha')?.f ?? 1) === 1 && (attr('beta')?.f ?? 1) === 1;
}

/** uint8 asymmetric parameters for a range, as onnxruntime computes them. */
function activationParameters(range: TensorRange): { scale: number; zeroPoint: number } {
  const min = Math.min(range.min, 0);
  const max = Math.max(range.max, 0);
  if (max === min) return { scale: 1, zeroPoint: 0 };
  const scale = Math.fround((max - min) / 255);
  return { scale, zeroPoint: Math.min(255, Math.max(0, Math.round(-min / scale))) };
}

function qdqGraph(graph: onnx.IGraphProto, plan: QuantizationPlan, ranges: Map<string, TensorRange>, reduceRange: boolean): onnx.IGraphProto {
  const weights = new Map(graph.initializer!.map((t) => [t.name!, t]));
  const nodes: onnx.INodeProto[] = [];
  const initializers: onnx.TensorProto[] = [];
  const scales = new Map<string, number>();
  const quantized = new Set<string>();

  /** Q → DQ pair on activation `name` (its own scale, or the one it shares). */
  const quantizeActivation = (name: string) => {
    const owner = plan.sharesScaleWith.get(name) ?? name;
    if (!scales.has(owner)) {
      const { scale, zeroPoint } = activationParameters(ranges.get(owner)!);
      scales.set(owner, scale);
      initializers.push(tensor(`${owner}_scale`, [], Float32Array.of(scale)), tensor(`${owner}_zero_point`, [], Uint8Array.of(zeroPoint)));
    }
    const params = [`${owner}_scale`, `${owner}_zero_point`];
    nodes.push(node('QuantizeLinear', [name, ...params], [`${name}_quantized`], `${name}_QuantizeLinear`));
    nodes.push(node('DequantizeLinear', [`${name}_quantized`, ...params], [`${name}_dequantized`], `${name}_DequantizeLinear`));
    quantized.add(name);
  };
  /** The dequantized form of node `n`'s data input `x`, which must have been quantized. */
  const dequantized = (n: onnx.INodeProto, x: string) => {
    if (!quantized.has(x)) throw new TypeError(`node ${n.name}: input ${x} is not a quantized activation (the graph input, or the output of a quantized node)`);
    return `${x}_dequantized`;
  };
  const scaleOf = (name: string) => scales.get(plan.sharesScaleWith.get(name) ?? name)!;

  quantizeActivation(plan.input.name!);
  for (const n of graph.node!) {
    if (plan.foldedRelu.has(n)) continue;
    const [x, w, b] = n.input!;
    const output = plan.rename.get(n.output![0]!) ?? n.output![0]!;
    if (n.opType === 'Conv' || n.opType === 'Gemm') {
      const inputs = [dequantized(n, x!), `${w}_dequantized`];
      const weight = weights.get(w!);
      if (!weight) throw new TypeError(`node ${n.name}: weight ${w} is not an initializer`);
      const limit = reduceRange ? 63 : weightLimit(ranges.get(plan.sharesScaleWith.get(x!) ?? x!)!);
      const weightScales = quantizeWeight(weight, limit, initializers, nodes);
      if (b) {
        const bias = weights.get(b);
        if (!bias) throw new TypeError(`node ${n.name}: bias ${b} is not an initializer`);
        quantizeBias(bias, scaleOf(x!), weightScales, initializers, nodes);
        inputs.push(`${b}_dequantized`);
      }
      nodes.push({ ...n, input: inputs, output: [output] });
      if (plan.calibrated.has(output)) quantizeActivation(output);
    } else {
      nodes.push({ ...n, input: [dequantized(n, x!), ...n.input!.slice(1)] });
      quantizeActivation(output);
    }
  }
  return { name: graph.name, node: nodes, initializer: initializers, input: [plan.input], output: graph.output };
}

/**
 * Largest quantised weight magnitude for a layer whose input has range `input`: 127, or
 * 63 when the input is not a ReLU output (the image itself, zero point near 128).
 *
 * onnxruntime's u8×s8 kernels on x86 CPUs without VNNI (AVX2, plain AVX-512) multiply
 * with VPMADDUBSW, which sums two adjacent u8·s8 products into a saturating int16. The
 * image's uint8 values sit around the zero point, so with 8-bit weights that sum often
 * passes 32767 (VGG16's first conv: logit cosine 0.9987 instead of 0.9994); with 7-bit
 * weights it cannot (2·255·63 < 32767). ReLU outputs sit near zero and rarely get there
 * once layers are wide enough to have many small weights per channel, so the other layers
 * keep 8 bits. This is onnxruntime's `reduce_range`, applied where it matters
 * (`reduceRange` applies it everywhere).
 */
function weightLimit(input: TensorRange): number {
  return input.min < 0 ? 63 : 127;
}

/** int8 symmetric per output channel (axis 0) in [-limit, limit]; returns the scales. */
function quantizeWeight(weight: onnx.ITensorProto, limit: number, initializers: onnx.TensorProto[], nodes: onnx.INodeProto[]): Float32Array {
  const name = weight.name!;
  const dims = dimsOf(weight);
  const values = floatValues(weight);
  const channels = dims[0]!;
  const size = values.length / channels;
  const scales = new Float32Array(channels);
  const quantized = new Int8Array(values.length);
  for (let c = 0; c < channels; c++) {
    let absMax = 0;
    for (let i = c * size; i < (c + 1) * size; i++) absMax = Math.max(absMax, Math.abs(values[i]!));
    const scale = absMax > 0 ? Math.fround(absMax / limit) : 1;
    scales[c] = scale;
    for (let i = c * size; i < (c + 1) * size; i++) quantized[i] = Math.max(-limit, Math.min(limit, Math.round(values[i]! / scale)));
  }
  addDequantized(name, dims, quantized, scales, new Int8Array(channels), initializers, nodes);
  return scales;
}

/** int32 with scale input_scale × weight_scale[c], zero point 0, as onnxruntime does. */
function quantizeBias(bias: onnx.ITensorProto, inputScale: number, weightScales: Float32Array, initializers: onnx.TensorProto[], nodes: onnx.INodeProto[]): void {
  const values = floatValues(bias);
  const scales = weightScales.map((s) => inputScale * s);
  const quantized = new Int32Array(values.length);
  for (let c = 0; c < values.length; c++) quantized[c] = Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.round(values[c]! / scales[c]!)));
  addDequantized(bias.name!, dimsOf(bias), quantized, scales, new Int32Array(values.length), initializers, nodes);
}

function addDequantized(
  name: string,
  dims: number[],
  quantized: Int8Array | Int32Array,
  scales: Float32Array,
  zeroPoints: Int8Array | Int32Array,
  initializers: onnx.TensorProto[],
  nodes: onnx.INodeProto[],
): void {
  initializers.push(tensor(`${name}_quantized`, dims, quantized), tensor(`${name}_scale`, [scales.length], scales), tensor(`${name}_zero_point`, [zeroPoints.length], zeroPoints));
  nodes.push(node('DequantizeLinear', [`${name}_quantized`, `${name}_scale`, `${name}_zero_point`], [`${name}_dequantized`], `${name}_DequantizeLinear`, [intAttribute('axis', 0)]));
}
