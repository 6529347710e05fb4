/**
 * The scalar TypeScript port of Pillow's BILINEAR resize that visionq ran before its
 * WebAssembly SIMD passes (packages/imaging/src/pil-resample.ts): kept as the oracle the
 * fast code is tested against (it matched Pillow byte for byte) and as the bench's
 * baseline of the exact path's per-core cost. Pillow's `libImaging/Resample.c`, 8 bpc.
 */
import type { Region, RgbImage } from '../../packages/imaging/src/pil-resample';

/** Pillow's `PRECISION_BITS`: 32 - 8 (result) - 2 (headroom). */
const PRECISION_BITS = 22;
const HALF = 1 << (PRECISION_BITS - 1);
const ONE = 1 << PRECISION_BITS;

/** Pillow's BILINEAR filter: a triangle of support 1. */
const BILINEAR_SUPPORT = 1;
function bilinear(x: number): number {
  const ax = x < 0 ? -x : x;
  return ax < 1 ? 1 - ax : 0;
}


/** Fixed-point filter taps for a run of output positions along one axis. */
interface Taps {
  /** Per output position: first input index used. */
  start: Int32Array;
  /** Per output position: number of taps used (≤ `size`). */
  count: Int32Array;
  /** `size` fixed-point weights per output position. */
  weights: Int32Array;
  size: number;
}

/**
 * Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for `outSize` positions over
 * `inSize` inputs, restricted to output positions `first … first + n - 1`. The float
 * arithmetic is kept in Pillow's order so the rounded weights are identical.
 */
function computeTaps(inSize: number, outSize: number, first: number, n: number): Taps {
  const scale = inSize / outSize;
  const filterScale = scale < 1 ? 1 : scale;
  const support = BILINEAR_SUPPORT * filterScale;
  const size = Math.ceil(support) * 2 + 1;
  const invScale = 1 / filterScale;
  const start = new Int32Array(n);
  const count = new Int32Array(n);
  const weights = new Int32Array(n * size);
  const w = new Float64Array(size);
  for (let i = 0; i < n; i++) {
    const center = (first + i + 0.5) * scale;
    // C casts truncate toward zero; negatives are clamped to 0 either way.
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let sum = 0;
    for (let x = 0; x < xmax; x++) {
      w[x] = bilinear((x + xmin - center + 0.5) * invScale);
      sum += w[x];
    }
    const base = i * size;
    for (let x = 0; x < xmax; x++) {
      const k = sum !== 0 ? w[x] / sum : w[x];
      // Bilinear weights are never negative, so Pillow's (int)(0.5 + k * ONE) is a floor.
      weights[base + x] = Math.floor(0.5 + k * ONE);
    }
    start[i] = xmin;
    count[i] = xmax;
  }
  return { start, count, weights, size };
}

function clip8(sum: number): number {
  const v = sum >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Resizes `src` to `outWidth`×`outHeight` with Pillow's BILINEAR filter and returns the
 * pixels of `region` of that result (default: all of it). `region` must lie inside the
 * resized image.
 */
export function scalarPilResizeBilinear(
  src: RgbImage,
  outWidth: number,
  outHeight: number,
  region: Region = { left: 0, top: 0, width: outWidth, height: outHeight },
): RgbImage {
  const { left, top, width, height } = region;
  if (
    !(outWidth > 0 && outHeight > 0) ||
    left < 0 || top < 0 || width <= 0 || height <= 0 ||
    left + width > outWidth || top + height > outHeight
  ) {
    throw new RangeError(`region ${JSON.stringify(region)} is not inside ${outWidth}x${outHeight}`);
  }
  if (src.pixels.length !== src.width * src.height * 3) {
    throw new RangeError(`pixels hold ${src.pixels.length} bytes, ${src.width}x${src.height} RGB needs ${src.width * src.height * 3}`);
  }
  const h = computeTaps(src.width, outWidth, left, width);
  const v = computeTaps(src.height, outHeight, top, height);

  // Input rows the vertical pass reads; the horizontal pass only produces those.
  const rowFirst = v.start[0];
  const rowEnd = v.start[height - 1] + v.count[height - 1];
  const tmp = new Uint8Array((rowEnd - rowFirst) * width * 3);

  const srcPx = src.pixels;
  const srcStride = src.width * 3;
  const hStart = h.start;
  const hCount = h.count;
  const hWeights = h.weights;
  const hSize = h.size;
  // Sums stay below 2^31 (weights sum to 2^22, pixels ≤ 255), so `| 0` keeps V8 on int32.
  for (let y = rowFirst; y < rowEnd; y++) {
    const rowIn = y * srcStride;
    let o = (y - rowFirst) * width * 3;
    for (let xx = 0; xx < width; xx++) {
      const n = hCount[xx];
      let k = xx * hSize;
      let p = rowIn + hStart[xx] * 3;
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      for (const end = k + n; k < end; k++, p += 3) {
        const w = hWeights[k];
        s0 = (s0 + srcPx[p] * w) | 0;
        s1 = (s1 + srcPx[p + 1] * w) | 0;
        s2 = (s2 + srcPx[p + 2] * w) | 0;
      }
      tmp[o++] = clip8(s0);
      tmp[o++] = clip8(s1);
      tmp[o++] = clip8(s2);
    }
  }

  const out = new Uint8Array(width * height * 3);
  const tmpStride = width * 3;
  const vWeights = v.weights;
  for (let yy = 0; yy < height; yy++) {
    const n = v.count[yy];
    const kBase = yy * v.size;
    const rowTop = (v.start[yy] - rowFirst) * tmpStride;
    let o = yy * tmpStride;
    for (let c = 0; c < tmpStride; c++) {
      let s = HALF;
      let p = rowTop + c;
      for (let k = kBase, end = kBase + n; k < end; k++, p += tmpStride) {
        s = (s + tmp[p] * vWeights[k]) | 0;
      }
      out[o++] = clip8(s);
    }
  }
  return { pixels: out, width, height };
}
