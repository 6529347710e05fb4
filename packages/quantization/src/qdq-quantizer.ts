import { onnx } from 'onnx-proto';
import { calibrateRanges, type TensorRange } from './activation-calibrator';
import { MIN_OPSET, normalizeGraph } from './graph-normalizer';
import { decodeModel, intAttribute, intAttributeOf, node, tensor } from './onnx-graph';
import { planQuantization, type QuantizationPlan } from './quantization-plan';
import { activationParameters, quantizeBias, quantizeWeight, weightLimit, type QuantizedTensor } from './tensor-quantizer';

/**
 * Static INT8 quantisation of a float image classifier into QDQ form, as onnxruntime's
 * `quantize_static(quant_format=QDQ, per_channel=True)` writes it. The model has one
 * input; its image path is made of the ops of SUPPORTED_OPS once `normalizeGraph` has
 * folded BatchNormalization, dropped Dropout and Identity and turned MatMul + Add into
 * Gemm. Anything else is a QuantizationError naming the node and its op, raised before
 * calibration runs.
 *
 * - weights: int8, symmetric ([-127, 127], zero point 0), one scale per output channel;
 *   see `weightLimit` for the one exception;
 * - biases: int32 with scale input_scale × weight_scale[c], zero point 0;
 * - activations: uint8, asymmetric, one scale and zero point per tensor, from the range
 *   seen on the calibration images (widened to include 0);
 * - a Relu or Clip(0, …) right after a Conv, Gemm, MatMul, Add, pool or Concat is
 *   dropped: the QuantizeLinear after it has zero point 0 for a range that starts at 0,
 *   and clamps exactly as the activation did;
 * - MaxPool, Flatten and Reshape keep their input's scale and zero point; pools, Add and
 *   Concat outputs get their own (Add: both inputs are dequantized, the residual case);
 * - a tensor read only by the float tail (Softmax) or by nobody (the logits) stays float.
 *
 * onnxruntime fuses each DQ → Conv → Q into QLinearConv, DQ → Gemm (→ Q) into QGemm,
 * DQ → AveragePool → Q into QLinearAveragePool, DQ → Add → Q into QLinearAdd, and runs
 * MaxPool, Flatten and Reshape on the uint8 tensors directly.
 */
export async function quantizeClassifier(
  model: Uint8Array,
  calibration: Iterable<Float32Array> | AsyncIterable<Float32Array>,
  options: QuantizeClassifierOptions = {},
): Promise<Uint8Array> {
  const { percentile, reduceRange = false } = options;
  if (percentile !== undefined && !(percentile > 50 && percentile <= 100)) throw new RangeError(`percentile must be in (50, 100], got ${percentile}`);
  const { float, plan } = prepare(model);
  const ranges = await calibrateRanges(float, [...plan.calibrated], calibration, percentile);
  const docString = [float.docString, 'INT8 QDQ (per-channel int8 weights, uint8 activations) by @visionq/quantization.'].filter(Boolean).join(' ');
  return onnx.ModelProto.encode({ ...float, docString, graph: qdqGraph(float.graph!, plan, ranges, reduceRange) }).finish();
}

/**
 * Throws the QuantizationError `quantizeClassifier` would throw for `model`, without
 * calibrating: a caller can refuse a model before it reads any image.
 */
export function assertQuantizable(model: Uint8Array): void {
  prepare(model);
}

export interface QuantizeClassifierOptions {
  /**
   * Top of each non-negative activation's range (ReLU outputs): this percentile of its
   * calibration values (e.g. 99.999) instead of the maximum, so rare outliers do not
   * coarsen its scale. Default: the maximum (onnxruntime's MinMax calibration).
   */
  percentile?: number;
  /**
   * 7-bit weights ([-63, 63]) in every layer, onnxruntime's `reduce_range`: no u8×s8
   * saturation on x86 CPUs without VNNI, for a little precision. Worth it for very narrow
   * models (a few dozen channels: VGG widthDivisor 16), whose few weights per channel sit
   * near the int8 limits; VGG16 loses accuracy with it (cosine 0.9983 instead of 0.9994).
   * Default false: only layers reading a signed input get 7 bits (`weightLimit`).
   */
  reduceRange?: boolean;
}

/** The normalized float model (also what calibration runs) and its plan. */
function prepare(model: Uint8Array): { float: onnx.IModelProto; plan: QuantizationPlan } {
  const source = decodeModel(model);
  if (!source.graph) throw new TypeError('the model has no graph');
  const defaultDomain = (source.opsetImport ?? []).find((o) => !o.domain);
  const opset = Number(defaultDomain?.version ?? 0);
  const graph = normalizeGraph(source.graph, opset);
  const float: onnx.IModelProto = {
    irVersion: Math.max(Number(source.irVersion ?? 0), 7),
    opsetImport: [...(source.opsetImport ?? []).filter((o) => o.domain), { domain: '', version: Math.max(opset, MIN_OPSET) }],
    producerName: 'visionq',
    producerVersion: '0.1.0',
    docString: source.docString ?? '',
    graph,
  };
  return { float, plan: planQuantization(graph) };
}

function qdqGraph(graph: onnx.IGraphProto, plan: QuantizationPlan, ranges: Map<string, TensorRange>, reduceRange: boolean): onnx.IGraphProto {
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
  const nodes: onnx.INodeProto[] = [];
  const added: onnx.TensorProto[] = [];
  const taken = new Set([...initializers.keys(), ...(graph.node ?? []).flatMap((n) => n.output ?? [])]);
  /** `base`, or `base_2`, `base_3`… when a tensor of that name exists (a weight shared by two layers with different limits). */
  const fresh = (base: string) => {
    let name = base;
    for (let k = 2; taken.has(name); k++) name = `${base}_${k}`;
    taken.add(name);
    return name;
  };
  /** Scale and zero point initializers of each scale owner, and the scale's value. */
  const params = new Map<string, { names: [string, string]; scale: number }>();
  /** Activation → the output of its DequantizeLinear. */
  const dequantized = new Map<string, string>();
  const ownerOf = (name: string) => plan.sharesScaleWith.get(name) ?? name;
  const scaleOf = (name: string) => params.get(ownerOf(name))?.scale;

  /** Q → DQ pair on activation `name` (its own scale, or the one it shares). */
  const quantizeActivation = (name: string) => {
    const owner = ownerOf(name);
    if (!params.has(owner)) {
      const { scale, zeroPoint } = activationParameters(ranges.get(owner)!);
      const names: [string, string] = [fresh(`${owner}_scale`), fresh(`${owner}_zero_point`)];
      added.push(tensor(names[0], [], Float32Array.of(scale)), tensor(names[1], [], Uint8Array.of(zeroPoint)));
      params.set(owner, { names, scale });
    }
    const { names } = params.get(owner)!;
    const [q, dq] = [fresh(`${name}_quantized`), fresh(`${name}_dequantized`)];
    nodes.push(node('QuantizeLinear', [name, ...names], [q], `${name}_QuantizeLinear`));
    nodes.push(node('DequantizeLinear', [q, ...names], [dq], `${name}_DequantizeLinear`));
    dequantized.set(name, dq);
  };

  /** Dequantized constant `source` (DQ node and its initializers); returns the DQ output's name. */
  const constant = <T extends Int8Array | Int32Array>(source: string, q: QuantizedTensor<T>, zeroPoints: T) => {
    const [values, scale, zeroPoint, output] = ['quantized', 'scale', 'zero_point', 'dequantized'].map((suffix) => fresh(`${source}_${suffix}`));
    const perAxis = q.axis !== undefined;
    added.push(
      tensor(values!, q.dims, q.values),
      tensor(scale!, perAxis ? [q.scales.length] : [], q.scales),
      tensor(zeroPoint!, perAxis ? [zeroPoints.length] : [], zeroPoints),
    );
    nodes.push(node('DequantizeLinear', [values!, scale!, zeroPoint!], [output!], `${source}_DequantizeLinear`, perAxis ? [intAttribute('axis', q.axis!)] : []));
    return output!;
  };
  const weightCache = new Map<string, { name: string; q: QuantizedTensor<Int8Array> }>();
  const dequantizedWeight = (w: string, axis: number | undefined, limit: number) => {
    const key = `${w}\u0000${axis}\u0000${limit}`;
    if (!weightCache.has(key)) {
      const q = quantizeWeight(initializers.get(w)!, axis, limit);
      weightCache.set(key, { name: constant(w, q, new Int8Array(q.scales.length)), q });
    }
    return weightCache.get(key)!;
  };

  quantizeActivation(plan.input.name!);
  for (const n of graph.node ?? []) {
    if (plan.folded.has(n)) continue;
    if (plan.passive.has(n)) {
      nodes.push(n);
      continue;
    }
    const output = plan.rename.get(n.output![0]!) ?? n.output![0]!;
    const inputs = (n.input ?? []).map((i) => (n.opType !== 'Softmax' && dequantized.get(i)) || i);
    const [x, w, b] = n.input ?? [];
    if (n.opType === 'MatMul' || ((n.opType === 'Conv' || n.opType === 'Gemm') && w)) {
      const weight = initializers.get(w!);
      if (weight) {
        const rank = (weight.dims ?? []).length;
        const axis = n.opType === 'Conv' ? 0 : n.opType === 'Gemm' ? (intAttributeOf(n, 'transB', 0) === 1 ? 0 : 1) : rank === 2 ? 1 : undefined;
        const limit = reduceRange || !plan.quantized.has(x!) ? 63 : weightLimit(ranges.get(ownerOf(x!))!);
        const { name, q } = dequantizedWeight(w!, axis, limit);
        inputs[1] = name;
        const bias = b ? initializers.get(b) : undefined;
        const inputScale = plan.quantized.has(x!) ? scaleOf(x!) : undefined;
        if (bias && inputScale !== undefined && q.axis !== undefined && [1, q.scales.length].includes((bias.dims ?? []).reduce((s, d) => s * Number(d), 1))) {
          const qb = quantizeBias(bias, inputScale, q);
          inputs[2] = constant(b!, qb, new Int32Array(qb.scales.length));
        }
      }
    }
    nodes.push({ ...n, input: inputs, output: [output, ...(n.output ?? []).slice(1)] });
    if (plan.quantized.has(output)) quantizeActivation(output);
  }

  // Float weights replaced by their quantized form, and folded Clip bounds, are left out.
  const read = new Set(nodes.flatMap((n) => n.input ?? []));
  const kept = [...initializers.values()].filter((t) => read.has(t.name!));
  return { name: graph.name, node: nodes, initializer: [...kept, ...added], input: [plan.input], output: graph.output };
}
