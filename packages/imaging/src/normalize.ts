import type { PreprocessSpec, PreprocessedImage } from './preprocess-spec';

/**
 * 256 float32 values per output channel: LUT[c * 256 + v] is what 8-bit value v becomes
 * in output channel c. Each step is rounded to float32 as torchvision does it in float32
 * tensors (`ToTensor`: v / 255, then `Normalize`: (x - mean) / std), so the values are
 * the very bits torchvision feeds the model.
 */
function buildLut(spec: PreprocessSpec): Float32Array {
  const lut = new Float32Array(3 * 256);
  const f = Math.fround;
  for (let c = 0; c < 3; c++) {
    const mean = f(spec.mean[c]);
    const std = f(spec.std[c]);
    for (let v = 0; v < 256; v++) {
      lut[c * 256 + v] = f(f(f(v / spec.scale) - mean) / std);
    }
  }
  return lut;
}

// Specs are few and long-lived (one per model), so their tables are kept per object.
const luts = new WeakMap<PreprocessSpec, Float32Array>();

function lutFor(spec: PreprocessSpec): Float32Array {
  let lut = luts.get(spec);
  if (!lut) {
    if (!(spec.scale > 0) || spec.std.some((s) => !(s !== 0 && Number.isFinite(s)))) {
      throw new RangeError(`spec needs scale > 0 and finite non-zero std, got scale ${spec.scale}, std ${spec.std.join(',')}`);
    }
    lut = buildLut(spec);
    luts.set(spec, lut);
  }
  return lut;
}

/** The input tensor's dimensions for `batch` images of `spec`: [N, 3, H, W], or [N, H, W, 3] for NHWC. */
export function inputDims(spec: PreprocessSpec, batch: number): number[] {
  return spec.layout === 'NHWC' ? [batch, spec.height, spec.width, 3] : [batch, 3, spec.height, spec.width];
}

/**
 * Writes one preprocessed image as normalised float32 (each value ((v / scale) - mean) /
 * std, channels in `spec.channelOrder`) into `target` from element `offset` on — one slot
 * of a batch buffer: planar C,H,W, or interleaved H,W,C when `spec.layout` is NHWC. Mean
 * and std are given in the model's channel order. One pass over the pixels, one table
 * lookup per value.
 */
export function writeNormalized(image: PreprocessedImage, spec: PreprocessSpec, target: Float32Array, offset: number): void {
  const { pixels, width, height } = image;
  const plane = width * height;
  if (pixels.length !== plane * 3) {
    throw new RangeError(`image holds ${pixels.length} bytes, ${width}x${height} RGB needs ${plane * 3}`);
  }
  if (width !== spec.width || height !== spec.height) {
    throw new RangeError(`image is ${width}x${height}, spec wants ${spec.width}x${spec.height}`);
  }
  if (!Number.isInteger(offset) || offset < 0 || offset + plane * 3 > target.length) {
    throw new RangeError(`offset ${offset} + ${plane * 3} values does not fit a target of ${target.length}`);
  }
  const lut = lutFor(spec);
  // Output channel of each RGB source channel; its table is that channel's.
  const bgr = spec.channelOrder === 'BGR';
  const rChannel = bgr ? 2 : 0;
  const bChannel = bgr ? 0 : 2;
  const rLut = rChannel * 256;
  const bLut = bChannel * 256;
  if (spec.layout === 'NHWC') {
    for (let p = 0; p < plane * 3; p += 3) {
      target[offset + p + rChannel] = lut[rLut + pixels[p]];
      target[offset + p + 1] = lut[256 + pixels[p + 1]];
      target[offset + p + bChannel] = lut[bLut + pixels[p + 2]];
    }
    return;
  }
  const r = offset + rChannel * plane;
  const g = offset + plane;
  const b = offset + bChannel * plane;
  for (let i = 0, p = 0; i < plane; i++, p += 3) {
    target[r + i] = lut[rLut + pixels[p]];
    target[g + i] = lut[256 + pixels[p + 1]];
    target[b + i] = lut[bLut + pixels[p + 2]];
  }
}
