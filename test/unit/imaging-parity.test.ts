import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { ImagePreprocessor, writeNormalized, type PreprocessSpec, type PreprocessedImage } from '@visionq/imaging';

/**
 * Parity with torchvision's PIL path, against the reference that
 * tools/parity/make_reference.py stored (torch 1.13, torchvision 0.14, Pillow 9.4).
 */
const FIXTURES = path.join(__dirname, '..', 'fixtures');

interface Variant {
  png: string;
  sum: [number, number, number];
  mean: [number, number, number];
}
interface PhotoReference {
  source: string;
  width: number;
  height: number;
  resized: [number, number];
  shorter_side: Variant;
  direct?: Variant;
}
interface Reference {
  spec: { resizeSize: number; height: number; width: number; mean: [number, number, number]; std: [number, number, number]; scale: number };
  photos: Record<string, PhotoReference>;
}

const reference = JSON.parse(readFileSync(path.join(FIXTURES, 'parity', 'reference.json'), 'utf8')) as Reference;

function specFor(resizeMode: PreprocessSpec['resizeMode']): PreprocessSpec {
  const r = reference.spec;
  return { ...r, resizeMode, channelOrder: 'RGB' };
}

/** Goal: mean absolute difference ≤ 1/255 (one 8-bit level). */
const MEAN_LIMIT = 1;
/**
 * Largest per-value difference observed: none. The resize is a bit-exact port of Pillow's
 * and sharp decodes these PNGs and this JPEG to the same bytes as PIL (with ICC ignored).
 */
const MAX_OBSERVED = 0;

async function referencePixels(file: string): Promise<PreprocessedImage> {
  const { data, info } = await sharp(path.join(FIXTURES, 'parity', file), { ignoreIcc: true })
    .raw()
    .toBuffer({ resolveWithObject: true });
  expect(info.channels).to.equal(3);
  return { pixels: new Uint8Array(data), width: info.width, height: info.height };
}

function diff(a: Uint8Array, b: Uint8Array): { mean: number; max: number } {
  expect(a.length).to.equal(b.length);
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    sum += d;
    if (d > max) max = d;
  }
  return { mean: sum / a.length, max };
}

/** Per-channel sums, in float64, of a C×H×W tensor at `offset`. */
function channelSums(tensor: Float32Array, offset: number, plane: number): number[] {
  return [0, 1, 2].map((c) => {
    let s = 0;
    for (let i = 0; i < plane; i++) s += tensor[offset + c * plane + i]!;
    return s;
  });
}

describe('imaging parity with torchvision (PIL path)', () => {
  const limits = { maxImageBytes: 20_000_000, maxImagePixels: 40_000_000 };
  // The same bytes whether the calling thread or a pool thread decodes and resizes.
  const preprocessors = { 'on the calling thread': new ImagePreprocessor(limits), 'in a pool of 2 threads': new ImagePreprocessor({ ...limits, threads: 2, poolFromPixels: 0 }) };
  after(() => Promise.all(Object.values(preprocessors).map((p) => p.close())));

  for (const [where, preprocessor] of Object.entries(preprocessors)) {
    for (const [name, photo] of Object.entries(reference.photos)) {
      const variants = [['shorter_side', photo.shorter_side] as const, ...(photo.direct ? [['direct', photo.direct] as const] : [])];
      for (const [mode, variant] of variants) {
        it(`${name} ${mode} ${where}: same pixels and same normalised tensor`, async () => {
          const input = readFileSync(path.join(FIXTURES, 'photos', photo.source));
          const spec = specFor(mode);
          const out = await preprocessor.preprocess(input, spec);
          expect([out.width, out.height]).to.deep.equal([spec.width, spec.height]);

          const expected = await referencePixels(variant.png);
          const d = diff(out.pixels, expected.pixels);
          expect(d.mean, 'mean abs diff (levels)').to.be.at.most(MEAN_LIMIT);
          expect(d.max, 'max abs diff (levels)').to.be.at.most(MAX_OBSERVED);

          // writeNormalized into slot 1 of a 2-image batch reproduces ToTensor+Normalize.
          const plane = spec.width * spec.height;
          const batch = new Float32Array(2 * 3 * plane).fill(Number.NaN);
          writeNormalized(out, spec, batch, 3 * plane);
          expect(batch.subarray(0, 3 * plane).every(Number.isNaN), 'slot 0 untouched').to.equal(true);
          const sums = channelSums(batch, 3 * plane, plane);
          sums.forEach((s, c) => expect(s, `channel ${c} sum`).to.be.closeTo(variant.sum[c]!, 1e-9 * Math.max(1, Math.abs(variant.sum[c]!))));
        });
      }
    }
  }

  it('writeNormalized of the reference crops gives torchvision sums (float32-exact table)', async () => {
    const spec = specFor('shorter_side');
    const plane = spec.width * spec.height;
    const tensor = new Float32Array(3 * plane);
    for (const photo of Object.values(reference.photos)) {
      writeNormalized(await referencePixels(photo.shorter_side.png), spec, tensor, 0);
      const sums = channelSums(tensor, 0, plane);
      sums.forEach((s, c) => {
        expect(s).to.be.closeTo(photo.shorter_side.sum[c]!, 1e-9 * Math.max(1, Math.abs(photo.shorter_side.sum[c]!)));
        expect(s / plane).to.be.closeTo(photo.shorter_side.mean[c]!, 1e-9);
      });
    }
  });
});
