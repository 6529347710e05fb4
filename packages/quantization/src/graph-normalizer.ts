import type { onnx } from 'onnx-proto';
import { attributeOf, dimsOf, floatAttributeOf, floatValues, intAttribute, intAttributeOf, nodeLabel, tensor } from './onnx-graph';
import { QuantizationError } from './quantization.errors';

/** The opset the quantized graph needs at least: per-axis DequantizeLinear came with 13. */
export const MIN_OPSET = 13;

/**
 * Float-to-float rewrites that leave a graph computing the same function with fewer op
 * kinds, so that the quantizer sees what it knows how to quantize:
 *
 * - Constant nodes holding a tensor become initializers (exporters write Clip bounds and
 *   Reshape shapes either way);
 * - Identity and Dropout (inference: the identity) are dropped;
 * - BatchNormalization right after a Conv is folded into the Conv's weight and bias, as
 *   an exporter in eval mode with constant folding would have done;
 * - Gemm's alpha and beta are folded into its B and C, so the quantized B is what runs;
 * - MatMul of a rank-2 activation by a 2-D weight, and the Add of a bias right after it,
 *   become one Gemm (transB=0), which onnxruntime runs as QGemm once quantized;
 * - an opset below 13 is lifted to 13 for the ops whose meaning changed on the way
 *   (Clip's bounds from attributes to inputs at 11; Softmax's axis at 13).
 */
export function normalizeGraph(graph: onnx.IGraphProto, opset: number): onnx.IGraphProto {
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
  const added: onnx.ITensorProto[] = [];
  const addInitializer = (t: onnx.ITensorProto) => {
    initializers.set(t.name!, t);
    added.push(t);
  };
  let nodes = constantsToInitializers(graph.node ?? [], addInitializer);
  nodes = dropIdentities(nodes, graph);
  nodes = foldBatchNorms(nodes, graph, initializers, addInitializer);
  nodes = nodes.map((n) => (n.opType === 'Gemm' ? foldGemmScalars(n, initializers, addInitializer) : n));
  nodes = matMulsToGemms(nodes, graph, initializers, addInitializer);
  if (opset < MIN_OPSET) {
    const rank = rankOf(graph, nodes, initializers);
    nodes = nodes.map((n) => liftToOpset13(n, opset, addInitializer, rank));
  }
  const used = new Set(nodes.flatMap((n) => n.input ?? []));
  const inputs = (graph.input ?? []).filter((i) => !initializers.has(i.name!));
  return {
    name: graph.name ?? 'graph',
    node: nodes,
    // Folded-away weights are left out; an initializer also listed as a graph input (old exporters) is an initializer only.
    initializer: [...(graph.initializer ?? []), ...added].filter((t) => used.has(t.name!)),
    input: inputs,
    output: graph.output ?? [],
  };
}

function constantsToInitializers(nodes: onnx.INodeProto[], addInitializer: (t: onnx.ITensorProto) => void): onnx.INodeProto[] {
  return nodes.filter((n) => {
    const value = n.opType === 'Constant' ? attributeOf(n, 'value')?.t : undefined;
    if (!value) return true;
    addInitializer({ ...value, name: n.output![0]! });
    return false;
  });
}

/**
 * Removes Identity and Dropout. Readers of their output read their input instead; when
 * their output is a graph output, the node producing their input writes it under that
 * name instead (a graph output keeps its name).
 */
function dropIdentities(nodes: onnx.INodeProto[], graph: onnx.IGraphProto): onnx.INodeProto[] {
  const graphOutputs = new Set((graph.output ?? []).map((o) => o.name!));
  const producer = new Map(nodes.flatMap((n) => (n.output ?? []).map((o) => [o, n] as const)));
  const rename = new Map<string, string>();
  const resolve = (name: string): string => (rename.has(name) ? resolve(rename.get(name)!) : name);
  const kept: onnx.INodeProto[] = [];
  const used = new Set(nodes.flatMap((n) => n.input ?? []));
  for (const n of nodes) {
    if (n.opType !== 'Identity' && n.opType !== 'Dropout') {
      kept.push(n);
      continue;
    }
    const [output, mask] = n.output!;
    if (mask && (used.has(mask) || graphOutputs.has(mask))) throw new QuantizationError(n, 'its mask output is read');
    const source = resolve(n.input![0]!);
    if (graphOutputs.has(output!)) {
      const from = producer.get(source);
      // The graph input or an initializer as a graph output, or one tensor under two output names: keep the copy.
      if (!from || graphOutputs.has(source)) {
        kept.push({ ...n, opType: 'Identity', input: [source], output: [output!], attribute: [] });
        continue;
      }
      rename.set(source, output!);
    } else {
      rename.set(output!, source);
    }
  }
  return kept.map((n) => ({ ...n, input: (n.input ?? []).map(resolve), output: (n.output ?? []).map(resolve) }));
}

/** Readers of each tensor, in graph order. */
function readersOf(nodes: onnx.INodeProto[]): Map<string, onnx.INodeProto[]> {
  const readers = new Map<string, onnx.INodeProto[]>();
  for (const n of nodes) for (const i of n.input ?? []) if (i) readers.set(i, [...(readers.get(i) ?? []), n]);
  return readers;
}

/** y = γ·(conv(x) − μ)/√(σ²+ε) + β is a conv with weights scaled per output channel and a new bias. */
function foldBatchNorms(
  nodes: onnx.INodeProto[],
  graph: onnx.IGraphProto,
  initializers: Map<string, onnx.ITensorProto>,
  addInitializer: (t: onnx.ITensorProto) => void,
): onnx.INodeProto[] {
  const graphOutputs = new Set((graph.output ?? []).map((o) => o.name!));
  const readers = readersOf(nodes);
  const producer = new Map(nodes.flatMap((n) => (n.output ?? []).map((o) => [o, n] as const)));
  const replaced = new Map<onnx.INodeProto, onnx.INodeProto | null>();
  for (const bn of nodes.filter((n) => n.opType === 'BatchNormalization')) {
    const [x, scale, bias, mean, variance] = bn.input!;
    const conv = producer.get(x!);
    const why = !conv || conv.opType !== 'Conv' ? 'only a BatchNormalization right after a Conv can be folded'
      : readers.get(x!)!.length !== 1 || graphOutputs.has(x!) ? 'the Conv before it has other readers'
      : !initializers.has(conv.input![1]!) || (conv.input![2] && !initializers.has(conv.input![2]!)) ? "the Conv's weight is not an initializer"
      : ![scale, bias, mean, variance].every((t) => initializers.has(t!)) ? 'its parameters are not initializers'
      : intAttributeOf(bn, 'training_mode', 0) !== 0 || (bn.output ?? []).filter(Boolean).length > 1 ? 'it is in training mode'
      : undefined;
    if (why) throw new QuantizationError(bn, why);
    const [gamma, beta, mu, sigma2] = [scale, bias, mean, variance].map((t) => floatValues(initializers.get(t!)!));
    const epsilon = floatAttributeOf(bn, 'epsilon', 1e-5);
    const weight = initializers.get(conv!.input![1]!)!;
    const w = floatValues(weight);
    const channels = dimsOf(weight)[0]!;
    const perChannel = w.length / channels;
    const oldBias = conv!.input![2] ? floatValues(initializers.get(conv!.input![2]!)!) : new Float32Array(channels);
    const newWeight = new Float32Array(w.length);
    const newBias = new Float32Array(channels);
    for (let c = 0; c < channels; c++) {
      const factor = gamma![c]! / Math.sqrt(sigma2![c]! + epsilon);
      for (let i = c * perChannel; i < (c + 1) * perChannel; i++) newWeight[i] = w[i]! * factor;
      newBias[c] = (oldBias[c]! - mu![c]!) * factor + beta![c]!;
    }
    const label = nodeLabel(bn);
    addInitializer(tensor(`${label}.folded_weight`, dimsOf(weight), newWeight));
    addInitializer(tensor(`${label}.folded_bias`, [channels], newBias));
    replaced.set(conv!, { ...conv!, input: [conv!.input![0]!, `${label}.folded_weight`, `${label}.folded_bias`], output: [bn.output![0]!] });
    replaced.set(bn, null);
  }
  return nodes.flatMap((n) => (replaced.has(n) ? (replaced.get(n) ? [replaced.get(n)!] : []) : [n]));
}

/** Gemm(A, B, C, alpha, beta) as Gemm(A, alpha·B, beta·C) with alpha = beta = 1. */
function foldGemmScalars(n: onnx.INodeProto, initializers: Map<string, onnx.ITensorProto>, addInitializer: (t: onnx.ITensorProto) => void): onnx.INodeProto {
  const alpha = floatAttributeOf(n, 'alpha', 1);
  const beta = floatAttributeOf(n, 'beta', 1);
  if (alpha === 1 && beta === 1) return n;
  const inputs = [...n.input!];
  const scaled = (index: number, factor: number) => {
    const t = initializers.get(inputs[index]!);
    if (!t) throw new QuantizationError(n, `alpha and beta other than 1 need B and C as initializers`);
    const name = `${nodeLabel(n)}.${index === 1 ? 'scaled_b' : 'scaled_c'}`;
    addInitializer(tensor(name, dimsOf(t), floatValues(t).map((v) => v * factor)));
    inputs[index] = name;
  };
  if (alpha !== 1) scaled(1, alpha);
  if (beta !== 1 && inputs[2]) scaled(2, beta);
  return { ...n, input: inputs, attribute: (n.attribute ?? []).filter((a) => a.name !== 'alpha' && a.name !== 'beta') };
}

/**
 * MatMul(x, W) with x of rank 2 and W a 2-D initializer, followed (as its only reader)
 * by an Add of an N-value initializer: one Gemm(x, W, b). Without such an Add: Gemm(x, W).
 */
function matMulsToGemms(
  nodes: onnx.INodeProto[],
  graph: onnx.IGraphProto,
  initializers: Map<string, onnx.ITensorProto>,
  addInitializer: (t: onnx.ITensorProto) => void,
): onnx.INodeProto[] {
  const rank = rankOf(graph, nodes, initializers);
  const readers = readersOf(nodes);
  const graphOutputs = new Set((graph.output ?? []).map((o) => o.name!));
  const replaced = new Map<onnx.INodeProto, onnx.INodeProto | null>();
  for (const mm of nodes.filter((n) => n.opType === 'MatMul')) {
    const [x, w] = mm.input!;
    const weight = initializers.get(w!);
    if (!weight || dimsOf(weight).length !== 2 || rank(x!) !== 2) continue;
    const n = dimsOf(weight)[1]!;
    const output = mm.output![0]!;
    const next = readers.get(output) ?? [];
    const add = next.length === 1 && next[0]!.opType === 'Add' && !graphOutputs.has(output) ? next[0]! : undefined;
    const biasName = add?.input!.find((i) => i !== output);
    const bias = biasName ? initializers.get(biasName) : undefined;
    const gemm = { ...mm, opType: 'Gemm', attribute: [intAttribute('transB', 0)] };
    if (add && bias && floatValues(bias).length === n) {
      const flat = `${nodeLabel(add)}.bias`;
      addInitializer(tensor(flat, [n], new Float32Array(floatValues(bias))));
      replaced.set(mm, { ...gemm, input: [x!, w!, flat], output: [add.output![0]!] });
      replaced.set(add, null);
    } else {
      replaced.set(mm, gemm);
    }
  }
  return nodes.flatMap((n) => (replaced.has(n) ? (replaced.get(n) ? [replaced.get(n)!] : []) : [n]));
}

/**
 * Ranks of the graph's tensors as far as the quantizer's ops tell them (undefined where
 * they do not): enough to know a MatMul reads a matrix.
 */
function rankOf(graph: onnx.IGraphProto, nodes: onnx.INodeProto[], initializers: Map<string, onnx.ITensorProto>): (name: string) => number | undefined {
  const ranks = new Map<string, number>();
  for (const i of graph.input ?? []) {
    const dims = i.type?.tensorType?.shape?.dim;
    if (dims) ranks.set(i.name!, dims.length);
  }
  const rank = (name: string) => ranks.get(name) ?? (initializers.has(name) ? dimsOf(initializers.get(name)!).length : undefined);
  for (const n of nodes) {
    const inputs = (n.input ?? []).filter(Boolean).map(rank);
    let r: number | undefined;
    switch (n.opType) {
      case 'Flatten':
      case 'Gemm':
        r = 2;
        break;
      case 'Reshape': {
        const shape = initializers.get(n.input![1]!);
        r = shape ? Number(dimsOf(shape)[0]) : undefined;
        break;
      }
      case 'MatMul':
      case 'Add':
      case 'Concat':
        r = inputs.every((x) => x !== undefined) ? Math.max(...(inputs as number[])) : undefined;
        break;
      default:
        r = inputs[0];
    }
    if (r !== undefined) ranks.set(n.output![0]!, r);
  }
  return rank;
}

/** The opset 11 and 13 forms of Clip and Softmax, which the quantized graph (opset 13) needs. */
function liftToOpset13(n: onnx.INodeProto, opset: number, addInitializer: (t: onnx.ITensorProto) => void, rank: (name: string) => number | undefined): onnx.INodeProto {
  if (n.opType === 'Clip' && opset < 11) {
    const label = nodeLabel(n);
    const min = floatAttributeOf(n, 'min', -3.4028234663852886e38);
    const max = floatAttributeOf(n, 'max', 3.4028234663852886e38);
    addInitializer(tensor(`${label}.min`, [], Float32Array.of(min)));
    addInitializer(tensor(`${label}.max`, [], Float32Array.of(max)));
    return { ...n, input: [n.input![0]!, `${label}.min`, `${label}.max`], attribute: [] };
  }
  if (n.opType === 'Softmax') {
    // Before 13, Softmax flattened its input to 2-D at `axis` (default 1); the same only for a matrix.
    const axis = intAttributeOf(n, 'axis', 1);
    if (rank(n.input![0]!) !== 2 || (axis !== 1 && axis !== -1)) throw new QuantizationError(n, `Softmax of opset ${opset} is only supported over the classes of a [N, classes] input`);
    return { ...n, attribute: [intAttribute('axis', 1)] };
  }
  return n;
}
