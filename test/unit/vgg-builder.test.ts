import { expect } from 'chai';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { buildVgg, planVgg, SeededRandom, vggParameterCount, writeVggModelFolder, type VggOptions } from '@visionq/vgg-builder';
import { manifestSchema } from '@visionq/models';

/** Written by tools/vgg-reference/make_reference.py: PyTorch's logits for the builder's weights. */
const REFERENCE = join(__dirname, '../fixtures/vgg-reference/vgg11-w16-c10-s1.json');
const SMALL: VggOptions = { depth: 11, widthDivisor: 16, numClasses: 10, seed: 1 };
const SAMPLE = 3 * 224 * 224;

/** The fixture's input recipe: murmur3's fmix32 of the flat index, mapped to [-2, 2). */
function recipeInput(count: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    let x = i;
    x ^= x >>> 16;
    x = Math.imul(x, 0x85ebca6b);
    x ^= x >>> 13;
    x = Math.imul(x, 0xc2b2ae35);
    x ^= x >>> 16;
    out[i] = ((x >>> 0) / 2 ** 32) * 4 - 2;
  }
  return out;
}

async function logits(model: Uint8Array, input: Float32Array): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const session = await ort.InferenceSession.create(model);
  try {
    const { logits } = await session.run({ input: new ort.Tensor('float32', input, [input.length / SAMPLE, 3, 224, 224]) });
    return { data: logits!.data as Float32Array, dims: logits!.dims };
  } finally {
    await session.release();
  }
}

describe('vgg-builder', () => {
  const small = buildVgg(SMALL);

  it('lays the graph out as torchvision does, for every depth', () => {
    for (const depth of [11, 13, 16, 19] as const) {
      const graph = onnx.ModelProto.decode(buildVgg({ depth, widthDivisor: 64, numClasses: 5 })).graph!;
      const count = (op: string) => graph.node!.filter((n) => n.opType === op).length;
      expect({ conv: count('Conv'), gemm: count('Gemm'), relu: count('Relu'), pool: count('MaxPool'), flatten: count('Flatten') }).to.deep.equal({
        conv: depth - 3,
        gemm: 3,
        relu: depth - 1,
        pool: 5,
        flatten: 1,
      });
      expect(graph.initializer!.map((t) => t.name)).to.include.members(['features.0.weight', 'features.0.bias', 'classifier.0.weight', 'classifier.6.bias']);
      for (const t of graph.initializer!) expect(t.rawData!.length, t.name!).to.equal(4 * t.dims!.reduce<number>((a, b) => a * Number(b), 1));
    }
    const model = onnx.ModelProto.decode(small);
    const shape = (v: onnx.IValueInfoProto) => v.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue));
    expect(shape(model.graph!.input![0]!)).to.deep.equal(['N', 3, 224, 224]);
    expect(shape(model.graph!.output![0]!)).to.deep.equal(['N', 10]);
    expect(Number(model.opsetImport![0]!.version)).to.equal(13);
  });

  it('counts parameters from the options alone: 138,357,544 for VGG16', () => {
    expect(vggParameterCount()).to.equal(138_357_544);
    expect(vggParameterCount({ depth: 11 })).to.equal(132_863_336);
    expect(vggParameterCount({ depth: 13 })).to.equal(133_047_848);
    expect(vggParameterCount({ depth: 19 })).to.equal(143_667_240);
    const stored = onnx.ModelProto.decode(small).graph!.initializer!.reduce((sum, t) => sum + t.dims!.reduce<number>((a, b) => a * Number(b), 1), 0);
    expect(stored).to.equal(vggParameterCount(SMALL));
    expect(planVgg({ depth: 16 }).layers.filter((l) => l.kind === 'conv')).to.have.length(13);
  });

  it('rejects options it cannot build, naming them', () => {
    expect(() => buildVgg({ depth: 12 as 11 })).to.throw(RangeError, /depth/);
    expect(() => buildVgg({ widthDivisor: 3 })).to.throw(RangeError, /widthDivisor/);
    expect(() => buildVgg({ numClasses: 0 })).to.throw(RangeError, /numClasses/);
    expect(() => buildVgg({ seed: 0.5 })).to.throw(TypeError, /seed/);
  });

  it('matches PyTorch on the committed reference logits', async () => {
    const reference = JSON.parse(await readFile(REFERENCE, 'utf8')) as { builder_options: VggOptions; input: { shape: number[] }; logits: number[][] };
    expect(reference.builder_options).to.deep.equal(SMALL);
    const input = recipeInput(reference.input.shape.reduce((a, b) => a * b, 1));
    const { data, dims } = await logits(small, input);
    const expected = reference.logits.flat();
    expect(dims).to.deep.equal([reference.logits.length, 10]);
    const scale = Math.max(...expected.map(Math.abs));
    const maxDiff = Math.max(...expected.map((v, i) => Math.abs(v - data[i]!)));
    expect(maxDiff / scale).to.be.below(1e-4);
  });

  it('takes any batch size, each row as if run alone', async () => {
    const input = recipeInput(3 * SAMPLE).map((v, i) => v * (1 + Math.floor(i / SAMPLE)));
    const three = await logits(small, input);
    expect(three.dims).to.deep.equal([3, 10]);
    const last = await logits(small, input.subarray(2 * SAMPLE));
    expect(last.dims).to.deep.equal([1, 10]);
    three.data.subarray(20).forEach((v, i) => expect(v).to.be.closeTo(last.data[i]!, 1e-4 * Math.abs(v) + 1e-5));
  });

  it('gives logits with a healthy spread, not near-constant ones', async () => {
    const { data } = await logits(small, recipeInput(2 * SAMPLE));
    for (const row of [data.subarray(0, 10), data.subarray(10)]) {
      const mean = row.reduce((a, b) => a + b, 0) / row.length;
      const std = Math.sqrt(row.reduce((a, b) => a + (b - mean) ** 2, 0) / row.length);
      expect(std).to.be.within(0.5, 20);
    }
  });

  it('is deterministic by seed', () => {
    expect(Buffer.compare(buildVgg(SMALL), small)).to.equal(0);
    expect(Buffer.compare(buildVgg({ ...SMALL, seed: 2 }), small)).to.not.equal(0);
    const whole = new SeededRandom(5).fillNormal(new Float32Array(1001), 1);
    const pieces = new Float32Array(1001);
    const random = new SeededRandom(5);
    random.fillNormal(pieces.subarray(0, 333), 1);
    random.fillNormal(pieces.subarray(333), 1);
    expect(pieces).to.deep.equal(whole);
    const mean = whole.reduce((a, b) => a + b, 0) / whole.length;
    expect(mean).to.be.closeTo(0, 0.1);
  });

  it('writes a model folder visionq can serve', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vgg-folder-'));
    try {
      const folder = await writeVggModelFolder(join(dir, 'tiny'), { ...SMALL, name: 'tiny-vgg' });
      const manifest = manifestSchema.parse(JSON.parse(await readFile(folder.manifestPath, 'utf8')));
      expect(manifest).to.deep.include({ name: 'tiny-vgg', labels: 'labels.txt' });
      expect(manifest.preprocess).to.deep.include({ resize_mode: 'shorter_side', resize_size: 256, scale: 255, channel_order: 'RGB' });
      const labels = (await readFile(folder.labelsPath, 'utf8')).trim().split('\n');
      expect(labels).to.have.length(10);
      expect(labels[9]).to.equal('class_9');
      expect(Buffer.compare(await readFile(folder.modelPath), small)).to.equal(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
