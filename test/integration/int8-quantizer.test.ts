import { expect } from 'chai';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { buildVgg, quantizeVgg, SeededRandom, type VggOptions } from '@visionq/vgg-builder';

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

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
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
    const dir = await mkdtemp(join(tmpdir(), 'int8-'));
    try {
      const optimized = join(dir, 'optimized.onnx');
      const session = await ort.InferenceSession.create(int8, { optimizedModelFilePath: optimized, logSeverityLevel: 3 });
      await session.release();
      const ops = onnx.ModelProto.decode(await readFile(optimized)).graph!.node!.map((n) => n.opType);
      expect(ops.filter((op) => op === 'QLinearConv')).to.have.length(8);
      expect(ops.filter((op) => op === 'QGemm')).to.have.length(3);
      expect(ops).to.not.include.members(['Conv', 'FusedConv', 'Gemm', 'FusedGemm', 'DequantizeLinear']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('agrees with the float model on unseen images', async () => {
    const [expected, actual] = [await run(fp32, heldOut), await run(int8, heldOut)];
    for (let i = 0; i < 4; i++) {
      expect(cosine(expected.subarray(i * 10, i * 10 + 10), actual.subarray(i * 10, i * 10 + 10))).to.be.above(0.99);
    }
  });

  it('calibrates on a percentile when asked', async () => {
    const percentile = await quantizeVgg(SMALL, calibration, { percentile: 99.999 });
    expect(cosine(await run(fp32, heldOut), await run(percentile, heldOut))).to.be.above(0.99);
  });

  it('keeps very narrow models accurate with reduceRange', async () => {
    const reduced = await quantizeVgg(TINY, calibration, { reduceRange: true });
    const weights = onnx.ModelProto.decode(reduced).graph!.initializer!.filter((t) => t.name!.endsWith('weight_quantized'));
    for (const t of weights) expect(maxAbsInt8(t), t.name!).to.equal(63);
    const [expected, actual] = [await run(buildVgg(TINY), heldOut), await run(reduced, heldOut)];
    for (let i = 0; i < 4; i++) {
      expect(cosine(expected.subarray(i * 10, i * 10 + 10), actual.subarray(i * 10, i * 10 + 10))).to.be.above(0.99);
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
