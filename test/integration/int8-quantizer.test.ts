import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { ImagePreprocessor, writeNormalized } from '@visionq/imaging';
import { readModelFolder } from '@visionq/models';
import { cosineSimilarity, quantizeClassifier } from '@visionq/quantization';
import { buildVgg, quantizeVgg, SeededRandom, type VggOptions } from '@visionq/vgg-builder';
import { BUNDLED_MODELS_DIR, FASHION_DIR } from '../support/model-fixtures';
import { optimizedOps } from '../support/optimized-ops';

// Width 1/4 (16–128 channels, 30 MB): narrow enough to be quick, wide enough to quantize as
// real widths do. Narrower models need `reduceRange` on CPUs without VNNI (see below).
const SMALL: VggOptions = { depth: 11, widthDivisor: 4, numClasses: 10, seed: 3 };
const TINY: VggOptions = { depth: 11, widthDivisor: 16, numClasses: 10, seed: 3 };
const SIDE = 224;

/**
 * `count` synthetic "photos", already normalised: per channel a few random low-frequency
 * waves plus a little noise, about zero mean and unit spread like ImageNet-normalised images.
 */
function syntheticImages(count: number, seed: number): Float32Array {
  const random = new SeededRandom(seed);
  const out = new Float32Array(count * 3 * SIDE * SIDE);
  const noise = random.fillNormal(new Float32Array(out.length), 0.1);
  for (let plane = 0; plane < count * 3; plane++) {
    const waves = Array.from({ length: 4 }, () => ({ fx: random.nextFloat() * 6, fy: random.nextFloat() * 6, phase: random.nextFloat() * 2 * Math.PI, amplitude: random.nextFloat() }));
    const offset = random.nextFloat() - 0.5;
    for (let y = 0; y < SIDE; y++) {
      for (let x = 0; x < SIDE; x++) {
        let v = offset;
        for (const w of waves) v += w.amplitude * Math.cos((2 * Math.PI * (w.fx * x + w.fy * y)) / SIDE + w.phase);
        const i = plane * SIDE * SIDE + y * SIDE + x;
        out[i] = v + noise[i]!;
      }
    }
  }
  return out;
}

async function run(model: Uint8Array | string, input: Float32Array, options: ort.InferenceSession.SessionOptions = {}): Promise<Float32Array> {
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model, options) : await ort.InferenceSession.create(model, options);
  try {
    const { logits } = await session.run({ input: new ort.Tensor('float32', input, [input.length / (3 * SIDE * SIDE), 3, SIDE, SIDE]) });
    expect(logits!.dims[0]).to.equal(input.length / (3 * SIDE * SIDE));
    return logits!.data as Float32Array;
  } finally {
    await session.release();
  }
}


function maxAbsInt8(t: onnx.ITensorProto): number {
  return new Int8Array(new Uint8Array(t.rawData!).buffer).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}


describe('int8 QDQ quantizer', () => {
  const fp32 = buildVgg(SMALL);
  const calibration = [syntheticImages(2, 1), syntheticImages(2, 2), syntheticImages(2, 3)];
  const heldOut = syntheticImages(4, 99);
  let int8: Uint8Array;

  before(async () => {
    int8 = await quantizeVgg(fp32, calibration);
  });

  it('writes QDQ: per-channel int8 weights, int32 biases, uint8 activations', () => {
    const graph = onnx.ModelProto.decode(int8).graph!;
    const producers = new Map(graph.node!.flatMap((n) => n.output!.map((o) => [o, n] as const)));
    const initializers = new Map(graph.initializer!.map((t) => [t.name!, t]));
    const { DataType } = onnx.TensorProto;
    const compute = graph.node!.filter((n) => n.opType === 'Conv' || n.opType === 'Gemm');
    expect(compute).to.have.length(11);
    for (const n of compute) {
      expect(n.input!.map((i) => producers.get(i)?.opType), n.name!).to.deep.equal(['DequantizeLinear', 'DequantizeLinear', 'DequantizeLinear']);
      const [x, w, b] = n.input!.map((i) => initializers.get(producers.get(i)!.input![0]!));
      expect(x, 'activations come from QuantizeLinear').to.equal(undefined);
      expect(w!.dataType).to.equal(DataType.INT8);
      expect(b!.dataType).to.equal(DataType.INT32);
      const weightScale = initializers.get(producers.get(n.input![1]!)!.input![1]!)!;
      expect(Number(weightScale.dims![0]), 'one scale per output channel').to.equal(Number(w!.dims![0]));
    }
    expect(graph.node!.filter((n) => n.opType === 'Relu')).to.have.length(0);
    const activationZeroPoints = graph.node!.filter((n) => n.opType === 'QuantizeLinear').map((n) => initializers.get(n.input![2]!)!);
    expect(activationZeroPoints.every((t) => t.dataType === DataType.UINT8)).to.equal(true);
    // The first conv reads the image (zero point near 128): 7-bit weights, no VPMADDUBSW saturation.
    expect(maxAbsInt8(initializers.get('features.0.weight_quantized')!)).to.equal(63);
    expect(maxAbsInt8(initializers.get('features.3.weight_quantized')!)).to.equal(127);
  });

  it('runs in onnxruntime as integer kernels', async () => {
    const ops = await optimizedOps(int8);
    expect(ops.filter((op) => op === 'QLinearConv')).to.have.length(8);
    expect(ops.filter((op) => op === 'QGemm')).to.have.length(3);
    expect(ops).to.not.include.members(['Conv', 'FusedConv', 'Gemm', 'FusedGemm', 'DequantizeLinear']);
  });

  it('agrees with the float model on unseen images', async () => {
    const [expected, actual] = [await run(fp32, heldOut), await run(int8, heldOut)];
    for (let i = 0; i < 4; i++) {
      expect(cosineSimilarity(expected.subarray(i * 10, i * 10 + 10), actual.subarray(i * 10, i * 10 + 10))).to.be.above(0.99);
    }
  });

  it('calibrates on a percentile when asked', async () => {
    const percentile = await quantizeVgg(SMALL, calibration, { percentile: 99.999 });
    expect(cosineSimilarity(await run(fp32, heldOut), await run(percentile, heldOut))).to.be.above(0.99);
  });

  it('keeps very narrow models accurate with reduceRange', async () => {
    const reduced = await quantizeVgg(TINY, calibration, { reduceRange: true });
    const weights = onnx.ModelProto.decode(reduced).graph!.initializer!.filter((t) => t.name!.endsWith('weight_quantized'));
    for (const t of weights) expect(maxAbsInt8(t), t.name!).to.equal(63);
    const [expected, actual] = [await run(buildVgg(TINY), heldOut), await run(reduced, heldOut)];
    for (let i = 0; i < 4; i++) {
      expect(cosineSimilarity(expected.subarray(i * 10, i * 10 + 10), actual.subarray(i * 10, i * 10 + 10))).to.be.above(0.99);
    }
  });

  it('refuses calibration it cannot use', async () => {
    let caught: unknown;
    await quantizeVgg(TINY, []).catch((err: unknown) => (caught = err));
    expect(caught).to.be.instanceOf(RangeError);
    await quantizeVgg(TINY, [new Float32Array(100)]).catch((err: unknown) => (caught = err));
    expect(caught).to.be.instanceOf(TypeError);
  });
});

describe('int8 QDQ quantizer on the trained fashion-vgg', () => {
  const modelDir = join(BUNDLED_MODELS_DIR, 'fashion-vgg');
  const images = 200;
  const calibrationFrom = 150;
  const size = 3 * SIDE * SIDE;
  let labels: number[];
  let tensors: Float32Array;
  let fp32: Uint8Array;
  let int8: Uint8Array;

  before(async () => {
    const { spec } = await readModelFolder(modelDir);
    expect(spec.resizeMode).to.equal('direct');
    const expected: { images: Array<{ file: string; label: number }> } = JSON.parse(await readFile(join(FASHION_DIR, 'expected.json'), 'utf8'));
    expect(expected.images).to.have.length(images);
    labels = expected.images.map((image) => image.label);
    // As the service preprocesses: PIL-exact resize to 224×224, then mean/std per channel.
    const preprocessor = new ImagePreprocessor({ maxImageBytes: 1 << 20, maxImagePixels: 1 << 20 });
    tensors = new Float32Array(images * size);
    for (const [i, image] of expected.images.entries()) {
      writeNormalized(await preprocessor.preprocess(await readFile(join(FASHION_DIR, image.file)), spec), spec, tensors, i * size);
    }
    fp32 = await readFile(join(modelDir, 'model.onnx'));
    const calibration = [0, 1, 2, 3, 4].map((k) => tensors.subarray((calibrationFrom + k * 10) * size, (calibrationFrom + k * 10 + 10) * size));
    int8 = await quantizeClassifier(fp32, calibration);
  });

  it('writes QDQ around every Conv, Gemm and AveragePool, the logits Gemm float', () => {
    const graph = onnx.ModelProto.decode(int8).graph!;
    const producers = new Map(graph.node!.flatMap((n) => n.output!.map((o) => [o, n] as const)));
    const readers = (name: string) => graph.node!.filter((n) => n.input!.includes(name)).map((n) => n.opType);
    const initializers = new Map(graph.initializer!.map((t) => [t.name!, t]));
    const count = (op: string) => graph.node!.filter((n) => n.opType === op).length;
    expect([count('Conv'), count('Gemm'), count('AveragePool'), count('MaxPool'), count('Flatten'), count('Relu')]).to.deep.equal([4, 2, 1, 2, 1, 0]);
    for (const n of graph.node!.filter((n) => n.opType === 'Conv' || n.opType === 'Gemm')) {
      expect(n.input!.map((i) => producers.get(i)?.opType), n.name!).to.deep.equal(['DequantizeLinear', 'DequantizeLinear', 'DequantizeLinear']);
      const [w, b] = n.input!.slice(1).map((i) => initializers.get(producers.get(i)!.input![0]!)!);
      expect([w!.dataType, b!.dataType], n.name!).to.deep.equal([onnx.TensorProto.DataType.INT8, onnx.TensorProto.DataType.INT32]);
    }
    const pool = graph.node!.find((n) => n.opType === 'AveragePool')!;
    expect(producers.get(pool.input![0]!)!.opType).to.equal('DequantizeLinear');
    expect(readers(pool.output![0]!)).to.deep.equal(['QuantizeLinear']);
    const poolQuantize = graph.node!.find((n) => n.input![0] === pool.output![0])!;
    expect(poolQuantize.input![1], 'the pooled image has its own scale').to.not.equal(producers.get(pool.input![0]!)!.input![1]);
    expect(producers.get('logits')!.opType).to.equal('Gemm');
  });

  it('runs in onnxruntime as integer kernels', async () => {
    const ops = await optimizedOps(int8);
    expect(ops.filter((op) => op === 'QLinearAveragePool')).to.have.length(1);
    expect(ops.filter((op) => op === 'QLinearConv')).to.have.length(4);
    expect(ops.filter((op) => op === 'QGemm')).to.have.length(2);
    expect(ops).to.not.include.members(['AveragePool', 'Conv', 'FusedConv', 'Gemm', 'FusedGemm', 'DequantizeLinear']);
  });

  it('classifies unseen Fashion-MNIST images as the float model does', async () => {
    const heldOut = tensors.subarray(0, calibrationFrom * size);
    const [expected, actual] = [await run(fp32, heldOut), await run(int8, heldOut)];
    const top1 = (logits: Float32Array, i: number) => {
      const row = logits.subarray(i * 10, i * 10 + 10);
      return row.indexOf(Math.max(...row));
    };
    let agree = 0;
    let fp32Correct = 0;
    let int8Correct = 0;
    for (let i = 0; i < calibrationFrom; i++) {
      if (top1(expected, i) === top1(actual, i)) agree++;
      if (top1(expected, i) === labels[i]) fp32Correct++;
      if (top1(actual, i) === labels[i]) int8Correct++;
    }
    // Measured: 150 of 150 agree, both 92.7% accurate, mean logit cosine 0.99997.
    expect(agree / calibrationFrom).to.be.at.least(0.98);
    expect(Math.abs(int8Correct - fp32Correct) / calibrationFrom).to.be.at.most(0.02);
    expect(fp32Correct / calibrationFrom).to.be.above(0.85);
  });

  it('names the node and op it cannot quantize', async () => {
    const model = onnx.ModelProto.decode(fp32);
    const flatten = model.graph!.node!.find((n) => n.opType === 'Flatten')!;
    flatten.opType = 'Sigmoid';
    let caught: unknown;
    await quantizeClassifier(onnx.ModelProto.encode(model).finish(), [tensors.subarray(0, size)]).catch((err: unknown) => (caught = err));
    expect(caught).to.be.instanceOf(TypeError);
    expect((caught as TypeError).message).to.contain(flatten.name!).and.to.contain('Sigmoid');
  });
});
