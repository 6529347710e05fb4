import { expect } from 'chai';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { ImagePreprocessor, writeNormalized } from '@visionq/imaging';
import { readModelFolder } from '@visionq/models';
import { cosineSimilarity, DataType, encodeModel, floatAttribute, intAttribute, intsAttribute, node, QuantizationError, quantizeClassifier, tensor, valueInfo } from '@visionq/quantization';
import { SeededRandom } from '@visionq/vgg-builder';
import { FASHION_DIR, REPO_ROOT } from '../support/model-fixtures';
import { optimizedOps } from '../support/optimized-ops';

const SIDE = 16;
const CLASSES = 10;

/** Seeded normal values: weights of standard deviation `std`. */
function normal(count: number, std: number, seed: number): Float32Array {
  return new SeededRandom(seed).fillNormal(new Float32Array(count), std);
}

function uniform(count: number, low: number, high: number, seed: number): Float32Array {
  const random = new SeededRandom(seed);
  return Float32Array.from({ length: count }, () => low + (high - low) * random.nextFloat());
}

/**
 * A small classifier with every op the quantizer takes, written as exporters write them:
 * Conv without bias + BatchNormalization + Relu, MaxPool, a residual Add then Relu, Conv +
 * Clip(0, 6) (bounds from Constant nodes), Concat, GlobalAveragePool, Reshape, Gemm with
 * transB=0 and alpha, Relu, Dropout, MatMul + Add, Identity, Softmax.
 */
function everyOpModel(): Uint8Array {
  const w = (name: string, dims: number[], seed: number) => tensor(name, dims, normal(dims.reduce((a, b) => a * b, 1), Math.sqrt(2 / dims.slice(1).reduce((a, b) => a * b, 1)), seed));
  const initializer = [
    w('conv1.weight', [8, 3, 3, 3], 1),
    tensor('bn1.scale', [8], uniform(8, 0.5, 1.5, 2)),
    tensor('bn1.bias', [8], normal(8, 0.2, 3)),
    tensor('bn1.mean', [8], normal(8, 0.3, 4)),
    tensor('bn1.var', [8], uniform(8, 0.5, 2, 5)),
    w('conv2.weight', [8, 8, 3, 3], 6),
    tensor('conv2.bias', [8], normal(8, 0.1, 7)),
    w('conv3.weight', [8, 8, 1, 1], 8),
    tensor('conv3.bias', [8], normal(8, 0.1, 9)),
    tensor('flat_shape', [2], BigInt64Array.of(-1n, 16n)),
    tensor('fc1.weight', [16, 12], normal(16 * 12, 0.5, 10)),
    tensor('fc1.bias', [12], normal(12, 0.1, 11)),
    tensor('fc2.weight', [12, CLASSES], normal(12 * CLASSES, 0.6, 12)),
    tensor('fc2.bias', [CLASSES], normal(CLASSES, 0.1, 13)),
  ];
  const constant = (name: string, value: number) => node('Constant', [], [name], name, [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: tensor(name, [], Float32Array.of(value)) }]);
  const nodes = [
    node('Conv', ['input', 'conv1.weight'], ['c1'], 'conv1', [intsAttribute('kernel_shape', [3, 3]), intsAttribute('pads', [1, 1, 1, 1])]),
    node('BatchNormalization', ['c1', 'bn1.scale', 'bn1.bias', 'bn1.mean', 'bn1.var'], ['b1'], 'bn1', [floatAttribute('epsilon', 1e-5)]),
    node('Relu', ['b1'], ['r1'], 'relu1'),
    node('MaxPool', ['r1'], ['p1'], 'pool1', [intsAttribute('kernel_shape', [2, 2]), intsAttribute('strides', [2, 2])]),
    node('Conv', ['p1', 'conv2.weight', 'conv2.bias'], ['c2'], 'conv2', [intsAttribute('kernel_shape', [3, 3]), intsAttribute('pads', [1, 1, 1, 1])]),
    node('Add', ['c2', 'p1'], ['sum'], 'residual'),
    node('Relu', ['sum'], ['r2'], 'relu2'),
    node('Conv', ['r2', 'conv3.weight', 'conv3.bias'], ['c3'], 'conv3', [intsAttribute('kernel_shape', [1, 1])]),
    constant('clip_min', 0),
    constant('clip_max', 6),
    node('Clip', ['c3', 'clip_min', 'clip_max'], ['r3'], 'relu6'),
    node('Concat', ['r2', 'r3'], ['cat'], 'concat', [intAttribute('axis', 1)]),
    node('GlobalAveragePool', ['cat'], ['gap'], 'gap'),
    node('Reshape', ['gap', 'flat_shape'], ['flat'], 'reshape'),
    node('Gemm', ['flat', 'fc1.weight', 'fc1.bias'], ['h'], 'fc1', [intAttribute('transB', 0), floatAttribute('alpha', 0.5)]),
    node('Relu', ['h'], ['hr'], 'relu_fc1'),
    node('Dropout', ['hr'], ['hd'], 'dropout'),
    node('MatMul', ['hd', 'fc2.weight'], ['mm'], 'fc2_matmul'),
    node('Add', ['mm', 'fc2.bias'], ['logits'], 'fc2_add'),
    node('Identity', ['logits'], ['logits_copy'], 'identity'),
    node('Softmax', ['logits_copy'], ['probabilities'], 'softmax', [intAttribute('axis', 1)]),
  ];
  return encodeModel(
    {
      name: 'every-op',
      node: nodes,
      initializer,
      input: [valueInfo('input', DataType.FLOAT, ['N', 3, SIDE, SIDE])],
      output: [valueInfo('probabilities', DataType.FLOAT, ['N', CLASSES])],
    },
    'test graph',
  );
}

async function run(model: Uint8Array, input: Float32Array, dims: number[], options: ort.InferenceSession.SessionOptions = {}): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model, options);
  try {
    const results = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', input, dims) });
    return results[session.outputNames[0]!]!.data as Float32Array;
  } finally {
    await session.release();
  }
}


function count(ops: string[], op: string): number {
  return ops.filter((o) => o === op).length;
}


function argmax(row: Float32Array): number {
  return row.indexOf(Math.max(...row));
}

/** Calibration that fails the test if the quantizer reads it. */
function untouchable(): Iterable<Float32Array> {
  return {
    [Symbol.iterator]() {
      throw new Error('the quantizer read calibration data for a model it refuses');
    },
  };
}

async function refusal(model: Uint8Array): Promise<QuantizationError> {
  const caught = await quantizeClassifier(model, untouchable()).then(
    () => null,
    (err: unknown) => err,
  );
  expect(caught).to.be.instanceOf(QuantizationError);
  return caught as QuantizationError;
}

/** `model` with the node named `name` edited. */
function edited(model: Uint8Array, name: string, edit: (n: onnx.INodeProto) => void): Uint8Array {
  const decoded = onnx.ModelProto.decode(model);
  edit(decoded.graph!.node!.find((n) => n.name === name)!);
  return onnx.ModelProto.encode(decoded).finish();
}

describe('INT8 quantizer on the ops of exported classifiers', () => {
  const fp32 = everyOpModel();
  const dims = (n: number) => [n, 3, SIDE, SIDE];
  const calibration = [0, 1, 2, 3].map((k) => normal(8 * 3 * SIDE * SIDE, 1, 100 + k));
  const heldOut = normal(32 * 3 * SIDE * SIDE, 1, 999);
  let int8: Uint8Array;

  before(async () => {
    int8 = await quantizeClassifier(fp32, calibration);
  });

  it('folds BatchNorm, drops Dropout and Identity, turns MatMul + Add into Gemm, and folds the activations', () => {
    const graph = onnx.ModelProto.decode(int8).graph!;
    const ops = graph.node!.map((n) => n.opType!);
    for (const gone of ['BatchNormalization', 'Dropout', 'Identity', 'MatMul', 'Relu', 'Clip', 'Constant']) expect(ops, gone).to.not.include(gone);
    expect([count(ops, 'Conv'), count(ops, 'Gemm'), count(ops, 'Add'), count(ops, 'Concat'), count(ops, 'Softmax')]).to.deep.equal([3, 2, 1, 1, 1]);
    const producers = new Map(graph.node!.flatMap((n) => n.output!.map((o) => [o, n] as const)));
    const initializers = new Map(graph.initializer!.map((t) => [t.name!, t]));
    for (const n of graph.node!.filter((n) => n.opType === 'Conv' || n.opType === 'Gemm')) {
      const weight = initializers.get(producers.get(n.input![1]!)!.input![0]!)!;
      expect(weight.dataType, n.name!).to.equal(onnx.TensorProto.DataType.INT8);
    }
    const add = graph.node!.find((n) => n.opType === 'Add')!;
    expect(add.input!.map((i) => producers.get(i)!.opType), 'the residual Add reads both inputs dequantized').to.deep.equal(['DequantizeLinear', 'DequantizeLinear']);
    const softmax = graph.node!.find((n) => n.opType === 'Softmax')!;
    expect(producers.get(softmax.input![0]!)!.opType, 'Softmax reads the float logits').to.equal('Gemm');
    expect(graph.output!.map((o) => o.name)).to.deep.equal(['probabilities']);
  });

  it('runs in onnxruntime as integer kernels', async () => {
    const ops = await optimizedOps(int8);
    expect(count(ops, 'QLinearConv')).to.equal(3);
    expect(count(ops, 'QLinearAdd')).to.equal(1);
    expect(count(ops, 'QLinearConcat')).to.equal(1);
    expect(count(ops, 'QLinearGlobalAveragePool')).to.equal(1);
    expect(count(ops, 'QGemm')).to.equal(2);
    expect(ops).to.not.include.members(['Conv', 'FusedConv', 'Gemm', 'FusedGemm', 'Add', 'DequantizeLinear']);
  });

  it('computes what the float model computes, within 8-bit tolerance', async () => {
    const [expected, actual] = [await run(fp32, heldOut, dims(32)), await run(int8, heldOut, dims(32))];
    let agree = 0;
    for (let i = 0; i < 32; i++) {
      const [a, b] = [expected.subarray(i * CLASSES, (i + 1) * CLASSES), actual.subarray(i * CLASSES, (i + 1) * CLASSES)];
      expect(cosineSimilarity(a, b), `image ${i}`).to.be.above(0.98);
      for (let c = 0; c < CLASSES; c++) expect(Math.abs(a[c]! - b[c]!), `image ${i} class ${c}`).to.be.below(0.1);
      if (argmax(a) === argmax(b)) agree++;
    }
    expect(agree).to.be.at.least(28);
  });

  it('lifts an opset 10 model (Clip bounds as attributes, Softmax of a matrix) to opset 13', async () => {
    const decoded = onnx.ModelProto.decode(fp32);
    const graph = decoded.graph!;
    graph.node = graph.node!.filter((n) => n.opType !== 'Constant');
    const clip = graph.node.find((n) => n.name === 'relu6')!;
    clip.input = [clip.input![0]!];
    clip.attribute = [onnx.AttributeProto.create({ name: 'min', type: onnx.AttributeProto.AttributeType.FLOAT, f: 0 }), onnx.AttributeProto.create({ name: 'max', type: onnx.AttributeProto.AttributeType.FLOAT, f: 6 })];
    // Opset 10's Dropout and BatchNormalization have the same inputs; Reshape and Concat too.
    decoded.opsetImport = [onnx.OperatorSetIdProto.create({ domain: '', version: 10 })];
    const old = onnx.ModelProto.encode(decoded).finish();
    const lifted = await quantizeClassifier(old, calibration);
    const model = onnx.ModelProto.decode(lifted);
    expect(model.opsetImport!.map((o) => Number(o.version))).to.deep.equal([13]);
    expect(cosineSimilarity(await run(old, heldOut, dims(32)), await run(lifted, heldOut, dims(32)))).to.be.above(0.98);
  });

  it('copies shape arithmetic (Shape, Gather, Unsqueeze, Concat of shapes) as it is', async () => {
    const decoded = onnx.ModelProto.decode(fp32);
    const graph = decoded.graph!;
    const at = graph.node!.findIndex((n) => n.name === 'reshape');
    graph.initializer!.push(tensor('zero', [], BigInt64Array.of(0n)), tensor('axes0', [1], BigInt64Array.of(0n)), tensor('features', [1], BigInt64Array.of(16n)));
    graph.node!.splice(
      at,
      1,
      node('Shape', ['gap'], ['gap_shape'], 'shape'),
      node('Gather', ['gap_shape', 'zero'], ['batch'], 'gather', [intAttribute('axis', 0)]),
      node('Unsqueeze', ['batch', 'axes0'], ['batch1'], 'unsqueeze'),
      node('Concat', ['batch1', 'features'], ['dynamic_shape'], 'shape_concat', [intAttribute('axis', 0)]),
      node('Reshape', ['gap', 'dynamic_shape'], ['flat'], 'reshape'),
    );
    const dynamic = onnx.ModelProto.encode(decoded).finish();
    const quantized = await quantizeClassifier(dynamic, calibration);
    const ops = onnx.ModelProto.decode(quantized).graph!.node!.map((n) => n.opType!);
    expect(['Shape', 'Gather', 'Unsqueeze'].map((op) => count(ops, op))).to.deep.equal([1, 1, 1]);
    expect(count(ops, 'Concat'), 'the image Concat and the shape Concat').to.equal(2);
    expect(cosineSimilarity(await run(dynamic, heldOut, dims(32)), await run(quantized, heldOut, dims(32)))).to.be.above(0.98);
  });

  it('refuses an op it cannot quantize, naming the node and the op, before reading calibration', async () => {
    const lstm = await refusal(edited(fp32, 'gap', (n) => (n.opType = 'LSTM')));
    expect(lstm.message).to.equal('cannot quantize node "gap" (op LSTM)');
    expect([lstm.node, lstm.op]).to.deep.equal(['gap', 'LSTM']);
    const sigmoid = await refusal(edited(fp32, 'relu2', (n) => (n.opType = 'Sigmoid')));
    expect(sigmoid.message).to.equal('cannot quantize node "relu2" (op Sigmoid)');
  });

  it('refuses a BatchNormalization it cannot fold and a Softmax before the end', async () => {
    const decoded = onnx.ModelProto.decode(fp32);
    const bn = decoded.graph!.node!.find((n) => n.name === 'bn1')!;
    bn.input![0] = 'input';
    const bnError = await refusal(onnx.ModelProto.encode(decoded).finish());
    expect(bnError.message).to.match(/^cannot quantize node "bn1" \(op BatchNormalization\): only a BatchNormalization right after a Conv/);
    const softmax = await refusal(edited(fp32, 'relu2', (n) => (n.opType = 'Softmax')));
    expect(softmax.message).to.match(/^cannot quantize node "relu2" \(op Softmax\): Softmax is only supported as the last node/);
  });
});

describe('INT8 quantizer on a torchvision MobileNetV2 export', () => {
  const modelDir = join(REPO_ROOT, 'test', 'fixtures', 'mobilenet-v2');
  let fp32: Uint8Array;
  let int8: Uint8Array;
  let heldOut: Float32Array;
  let side: number;

  before(async () => {
    const folder = await readModelFolder(modelDir);
    side = folder.spec.height;
    const size = 3 * side * side;
    const files = (await readdir(FASHION_DIR)).filter((f) => f.endsWith('.png')).sort();
    const preprocessor = new ImagePreprocessor({ maxImageBytes: 1 << 20, maxImagePixels: 1 << 20 });
    const tensors = new Float32Array(files.length * size);
    for (const [i, file] of files.entries()) writeNormalized(await preprocessor.preprocess(await readFile(join(FASHION_DIR, file)), folder.spec), folder.spec, tensors, i * size);
    fp32 = await readFile(folder.modelPath);
    // Calibrate on the last 50 images, compare on the first 150.
    int8 = await quantizeClassifier(fp32, [0, 1, 2, 3, 4].map((k) => tensors.subarray((150 + k * 10) * size, (160 + k * 10) * size)));
    heldOut = tensors.subarray(0, 150 * size);
  });

  it('is the graph torch.onnx wrote: BatchNormalization, Clip with Constant bounds, Add, GlobalAveragePool, Flatten, Gemm', () => {
    const ops = onnx.ModelProto.decode(fp32).graph!.node!.map((n) => n.opType!);
    expect(new Set(ops)).to.deep.equal(new Set(['Conv', 'BatchNormalization', 'Constant', 'Clip', 'Add', 'GlobalAveragePool', 'Flatten', 'Gemm']));
  });

  it('runs in onnxruntime as integer kernels only', async () => {
    const convs = count(onnx.ModelProto.decode(fp32).graph!.node!.map((n) => n.opType!), 'Conv');
    const ops = await optimizedOps(int8);
    expect(count(ops, 'QLinearConv')).to.equal(convs);
    expect(count(ops, 'QLinearAdd')).to.equal(3);
    expect(count(ops, 'QLinearGlobalAveragePool')).to.equal(1);
    expect(count(ops, 'QGemm')).to.equal(1);
    expect(ops).to.not.include.members(['Conv', 'FusedConv', 'Clip', 'Add', 'Gemm', 'BatchNormalization', 'DequantizeLinear']);
  });

  it('agrees with the float model on images it was not calibrated on', async () => {
    const dims = [150, 3, side, side];
    const [expected, actual] = [await run(fp32, heldOut, dims), await run(int8, heldOut, dims)];
    let agree = 0;
    let cosines = 0;
    for (let i = 0; i < 150; i++) {
      const [a, b] = [expected.subarray(i * CLASSES, (i + 1) * CLASSES), actual.subarray(i * CLASSES, (i + 1) * CLASSES)];
      if (argmax(a) === argmax(b)) agree++;
      cosines += cosineSimilarity(a, b);
    }
    // Random weights (see tools/mobilenet-fixture): measured 129 of 150 agree, mean cosine 0.974.
    expect(agree / 150).to.be.at.least(0.75);
    expect(cosines / 150).to.be.above(0.95);
  });
});
