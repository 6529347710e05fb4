import type { onnx } from 'onnx-proto';
import { floatValues, intAttributeOf } from './onnx-graph';
import { QuantizationError } from './quantization.errors';

/** Ops with an int8 weight: onnxruntime fuses DQ → op (→ Q) into QLinearConv, QGemm, QLinearMatMul / MatMulIntegerToFloat. */
export const WEIGHTED = new Set(['Conv', 'Gemm', 'MatMul']);
/** Ops whose output gets its own calibrated scale (QLinearAveragePool, QLinearGlobalAveragePool, QLinearAdd, QLinearConcat). */
const OWN_SCALE = new Set(['AveragePool', 'GlobalAveragePool', 'Add', 'Concat']);
/** Ops that only move or pick values: the output keeps the input's scale, and onnxruntime runs them on the uint8 tensor. */
const SAME_SCALE = new Set(['MaxPool', 'Flatten', 'Reshape']);
/** Activations: folded into their producer's quantization where they can be, else their own scale. */
const ACTIVATIONS = new Set(['Relu', 'Clip']);
/** Left in float at the end of the graph, reading the float logits. */
const FLOAT_TAIL = 'Softmax';

/** Every op the quantizer accepts in the image path, after `normalizeGraph` (which removes BatchNormalization, Dropout, Identity). */
export const SUPPORTED_OPS = [...WEIGHTED, ...OWN_SCALE, ...SAME_SCALE, ...ACTIVATIONS, FLOAT_TAIL];

export interface QuantizationPlan {
  /** The graph input (the image batch). */
  input: onnx.IValueInfoProto;
  /** Activations quantized with a scale of their own (calibrated), in graph order, the input first. */
  calibrated: Set<string>;
  /** Activations followed by QuantizeLinear → DequantizeLinear: those read by a node that works on quantized values. */
  quantized: Set<string>;
  /** Relu and Clip(0, …) nodes folded into the quantization of their producer's output. */
  folded: Set<onnx.INodeProto>;
  /** Output of a folded activation's producer → the activation's output, which the producer now writes. */
  rename: Map<string, string>;
  /** Activation → the tensor whose scale and zero point it keeps (MaxPool, Flatten, Reshape outputs). */
  sharesScaleWith: Map<string, string>;
  /** Nodes copied as they are: shape arithmetic (Shape and what reads only constants and shapes). */
  passive: Set<onnx.INodeProto>;
}

/**
 * Decides, for a normalized graph, which tensor gets which quantization. Throws a
 * QuantizationError naming the first node it cannot quantize. A node is *passive* when
 * it is a Shape or reads no activation (only initializers, constants and shapes): it is
 * copied as it is. Every other node is in the image path and must be one of
 * SUPPORTED_OPS.
 */
export function planQuantization(graph: onnx.IGraphProto): QuantizationPlan {
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
  const inputs = graph.input ?? [];
  if (inputs.length !== 1) throw new TypeError(`the model must have one input (the image batch), got ${inputs.map((i) => i.name).join(', ') || 'none'}`);
  const input = inputs[0]!;
  const nodes = graph.node ?? [];
  const graphOutputs = new Set((graph.output ?? []).map((o) => o.name!));
  const readers = new Map<string, onnx.INodeProto[]>();
  for (const n of nodes) for (const i of n.input ?? []) if (i) readers.set(i, [...(readers.get(i) ?? []), n]);
  const producer = new Map(nodes.flatMap((n) => (n.output ?? []).map((o) => [o, n] as const)));

  const activations = new Set([input.name!]);
  const passive = new Set<onnx.INodeProto>();
  for (const n of nodes) {
    const data = (n.input ?? []).filter((i) => activations.has(i));
    if (n.opType === 'Shape' || data.length === 0) {
      passive.add(n);
      continue;
    }
    checkNode(n, initializers, activations, readers, graphOutputs);
    activations.add(n.output![0]!);
  }

  // A tensor read by any node of the image path but the float tail is quantized.
  const readsQuantized = (n: onnx.INodeProto) => !passive.has(n) && n.opType !== FLOAT_TAIL;
  const quantized = new Set([...activations].filter((t) => (readers.get(t) ?? []).some(readsQuantized)));

  const folded = new Set<onnx.INodeProto>();
  const rename = new Map<string, string>();
  for (const n of nodes) {
    if (!ACTIVATIONS.has(n.opType!) || passive.has(n) || !startsAtZero(n, initializers)) continue;
    const source = n.input![0]!;
    const output = n.output![0]!;
    const from = producer.get(source);
    const foldable =
      from !== undefined && (WEIGHTED.has(from.opType!) || OWN_SCALE.has(from.opType!)) && readers.get(source)!.length === 1 && !graphOutputs.has(source) && quantized.has(output) && !graphOutputs.has(output);
    if (!foldable) continue;
    folded.add(n);
    rename.set(source, output);
  }

  const calibrated = new Set([input.name!]);
  const sharesScaleWith = new Map<string, string>();
  for (const n of nodes) {
    if (passive.has(n) || folded.has(n)) continue;
    const output = rename.get(n.output![0]!) ?? n.output![0]!;
    if (SAME_SCALE.has(n.opType!)) {
      const source = n.input![0]!;
      sharesScaleWith.set(output, sharesScaleWith.get(source) ?? source);
    } else if (quantized.has(output)) {
      calibrated.add(output);
    }
  }
  return { input, calibrated, quantized, folded, rename, sharesScaleWith, passive };
}

/** Refuses, before anything runs, a node of the image path the quantizer cannot write. */
function checkNode(n: onnx.INodeProto, initializers: Map<string, onnx.ITensorProto>, activations: Set<string>, readers: Map<string, onnx.INodeProto[]>, graphOutputs: Set<string>): void {
  const op = n.opType!;
  if (!SUPPORTED_OPS.includes(op)) throw new QuantizationError(n);
  const [x, w, b] = n.input ?? [];
  const extraOutputs = (n.output ?? []).slice(1).filter((o) => o && (readers.has(o) || graphOutputs.has(o)));
  if (extraOutputs.length > 0) throw new QuantizationError(n, `only its first output can be quantized, ${extraOutputs.join(', ')} is read`);
  if (op === 'Conv' || op === 'Gemm') {
    if (!activations.has(x!)) throw new QuantizationError(n, 'its first input must be the image path');
    if (!initializers.has(w!)) throw new QuantizationError(n, 'its weight is not an initializer');
    if (b && !initializers.has(b)) throw new QuantizationError(n, 'its bias is not an initializer');
  }
  if (op === 'Gemm' && intAttributeOf(n, 'transA', 0) !== 0) throw new QuantizationError(n, 'transA=1 is not supported');
  if (SAME_SCALE.has(op) && !activations.has(x!)) throw new QuantizationError(n, 'its first input must be the image path');
  if (op === FLOAT_TAIL && (readers.has(n.output![0]!) || !graphOutputs.has(n.output![0]!))) throw new QuantizationError(n, 'Softmax is only supported as the last node, writing a graph output');
}

/** A Relu, or a Clip whose lower bound is 0 (ReLU6): what a uint8 zero point of 0 clamps exactly. */
function startsAtZero(n: onnx.INodeProto, initializers: Map<string, onnx.ITensorProto>): boolean {
  if (n.opType === 'Relu') return true;
  const min = n.input?.[1] ? initializers.get(n.input[1]) : undefined;
  return min !== undefined && floatValues(min)[0] === 0;
}
