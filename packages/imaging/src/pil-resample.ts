/// <reference path="./wasm-globals.d.ts" />
/**
 * Pillow's BILINEAR and BICUBIC resizes of 8-bit RGB, bit for bit: a port of
 * `ImagingResample` from Pillow's `libImaging/Resample.c` (the code torchvision's `Resize`
 * runs on PIL images); and its NEAREST, which Pillow runs as an affine scale.
 *
 * Like Pillow it is separable: a horizontal pass into an 8-bit intermediate image, then
 * a vertical pass. Each output pixel is a filtered average (triangle or cubic) whose
 * support grows with the downscale factor (that is the antialiasing), with coefficients
 * rounded to 22-bit fixed point and sums rounded and clipped exactly as Pillow does.
 *
 * Only the `region` of the resized image is computed. Every output pixel depends on its
 * own position in the full-size resize only, so resizing then cropping and computing
 * just the cropped pixels give identical bytes — and a centre crop skips a third of the
 * work.
 *
 * The taps are computed here; the two passes run in WebAssembly SIMD (pil-resample.wat),
 * all three channels of a pixel in one vector: the same integer sums as Pillow's C, several
 * times faster than scalar JavaScript (a 12-megapixel photo's centre crop in ~15 ms).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Pillow's `PRECISION_BITS`: 32 - 8 (result) - 2 (headroom). */
const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;

/** A convolution filter of Pillow's resampling: its support (in input pixels at scale 1) and shape. */
interface Filter {
  support: number;
  weight(x: number): number;
}

/** Pillow's filters (libImaging/Resample.c): BILINEAR, a triangle; BICUBIC, Keys' cubic with a = -0.5. */
const FILTERS = {
  bilinear: {
    support: 1,
    weight(x: number): number {
      const ax = x < 0 ? -x : x;
      return ax < 1 ? 1 - ax : 0;
    },
  },
  bicubic: {
    support: 2,
    weight(x: number): number {
      const a = -0.5;
      const ax = x < 0 ? -x : x;
      if (ax < 1) return ((a + 2) * ax - (a + 3)) * ax * ax + 1;
      if (ax < 2) return (((ax - 5) * ax + 8) * ax - 4) * a;
      return 0;
    },
  },
} satisfies Record<string, Filter>;

/** The convolution filters visionq resamples with, by their torchvision/PIL names. */
export type ConvolutionFilter = keyof typeof FILTERS;

/** Interleaved 8-bit RGB pixels, row after row, no padding. */
export interface RgbImage {
  pixels: Uint8Array;
  width: number;
  height: number;
}

/** A rectangle of the resized image (may be all of it). */
export interface Region {
  left: number;
  top: number;
  width: number;
  height: number;
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
function computeTaps(inSize: number, outSize: number, first: number, n: number, filter: Filter): Taps {
  const scale = inSize / outSize;
  const filterScale = scale < 1 ? 1 : scale;
  const support = filter.support * filterScale;
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
      w[x] = filter.weight((x + xmin - center + 0.5) * invScale);
      sum += w[x];
    }
    const base = i * size;
    for (let x = 0; x < xmax; x++) {
      const k = sum !== 0 ? w[x] / sum : w[x];
      // Pillow rounds half away from zero by a C cast: (int)(±0.5 + k * ONE).
      weights[base + x] = Math.trunc(k < 0 ? -0.5 + k * ONE : 0.5 + k * ONE);
    }
    start[i] = xmin;
    count[i] = xmax;
  }
  return { start, count, weights, size };
}

/** The compiled passes; built from pil-resample.wat into dist by the package's build. */
let compiled: WebAssembly.Module | undefined;

interface Passes {
  memory: WebAssembly.Memory;
  horizontal(src: number, srcStride: number, rows: number, dst: number, width: number, starts: number, counts: number, weights: number, size: number): void;
  vertical(src: number, stride: number, dst: number, height: number, starts: number, counts: number, weights: number, size: number): void;
}

function instantiate(): Passes {
  // From src/ (tests) and dist/ alike: the package's dist holds the binary.
  compiled ??= new WebAssembly.Module(readFileSync(join(__dirname, '..', 'dist', 'pil-resample.wasm')));
  return new WebAssembly.Instance(compiled).exports as unknown as Passes;
}

/**
 * Memory kept between resizes (per thread), up to this size; a larger image gets an
 * instance of its own, dropped afterwards, because WebAssembly memory never shrinks.
 */
const KEPT_MEMORY_BYTES = 64 << 20;
const PAGE = 65536;
let kept: Passes | undefined;

function passesFor(bytes: number): Passes {
  if (bytes > KEPT_MEMORY_BYTES) return grown(instantiate(), bytes);
  kept ??= instantiate();
  return grown(kept, bytes);
}

function grown(passes: Passes, bytes: number): Passes {
  const have = passes.memory.buffer.byteLength;
  if (have < bytes) passes.memory.grow(Math.ceil((bytes - have) / PAGE));
  return passes;
}

/**
 * Where `src` lies in the image being resized, when it is only the part the region reads
 * (see {@link sourceWindow}): the decoder then never produces the rest.
 */
export interface SourceWindow {
  left: number;
  top: number;
  fullWidth: number;
  fullHeight: number;
}

/**
 * The rectangle of a `fullWidth`×`fullHeight` image that resizing it to
 * `outWidth`×`outHeight` reads to compute `region`: every tap of every output pixel in it.
 */
export function sourceWindow(fullWidth: number, fullHeight: number, outWidth: number, outHeight: number, region: Region, filter: ConvolutionFilter = 'bilinear'): Region {
  const span = (inSize: number, outSize: number, first: number, n: number) => {
    const head = computeTaps(inSize, outSize, first, 1, FILTERS[filter]);
    const tail = computeTaps(inSize, outSize, first + n - 1, 1, FILTERS[filter]);
    return [head.start[0]!, tail.start[0]! + tail.count[0]!] as const;
  };
  const [left, right] = span(fullWidth, outWidth, region.left, region.width);
  const [top, bottom] = span(fullHeight, outHeight, region.top, region.height);
  return { left, top, width: right - left, height: bottom - top };
}

/** Room after each area: the SIMD loops read and write up to 16 bytes past an area's end. */
const PAD = 16;
const align = (n: number) => (n + 15) & ~15;

/**
 * Resizes `src` to `outWidth`×`outHeight` with Pillow's BILINEAR (or BICUBIC) filter and
 * returns the pixels of `region` of that result (default: all of it). `region` must lie
 * inside the resized image. With `window`, `src` is that window of the image being
 * resized, and must hold every pixel the region reads.
 */
export function pilResize(
  src: RgbImage,
  outWidth: number,
  outHeight: number,
  region: Region = { left: 0, top: 0, width: outWidth, height: outHeight },
  window: SourceWindow = { left: 0, top: 0, fullWidth: src.width, fullHeight: src.height },
  filter: ConvolutionFilter = 'bilinear',
): RgbImage {
  checkResize(src, outWidth, outHeight, region);
  const { left, top, width, height } = region;
  const h = computeTaps(window.fullWidth, outWidth, left, width, FILTERS[filter]);
  const v = computeTaps(window.fullHeight, outHeight, top, height, FILTERS[filter]);
  for (let i = 0; i < width; i++) h.start[i]! -= window.left;
  // Input rows the vertical pass reads; only those are copied in and resized horizontally.
  const firstRead = v.start[0]!;
  const rows = v.start[height - 1]! + v.count[height - 1]! - firstRead;
  for (let i = 0; i < height; i++) v.start[i]! -= firstRead;
  const rowFirst = firstRead - window.top;
  if (h.start[0]! < 0 || h.start[width - 1]! + h.count[width - 1]! > src.width || rowFirst < 0 || rowFirst + rows > src.height) {
    throw new RangeError(`a ${src.width}x${src.height} window at ${window.left},${window.top} does not hold what region ${JSON.stringify(region)} reads`);
  }

  const srcStride = src.width * 3;
  const stride = width * 3;
  // Memory layout: taps (h, then v), source rows, horizontal result, output.
  let at = 0;
  const place = (bytes: number) => {
    const offset = at;
    at = align(offset + bytes + PAD);
    return offset;
  };
  const hStart = place(h.start.byteLength);
  const hCount = place(h.count.byteLength);
  const hWeights = place(h.weights.byteLength);
  const vStart = place(v.start.byteLength);
  const vCount = place(v.count.byteLength);
  const vWeights = place(v.weights.byteLength);
  const source = place(rows * srcStride);
  const tmp = place(rows * stride);
  const out = place(height * stride);
  const passes = passesFor(at);
  const memory = new Uint8Array(passes.memory.buffer);
  const copy = (array: Int32Array, offset: number) => memory.set(new Uint8Array(array.buffer, array.byteOffset, array.byteLength), offset);
  copy(h.start, hStart);
  copy(h.count, hCount);
  copy(h.weights, hWeights);
  copy(v.start, vStart);
  copy(v.count, vCount);
  copy(v.weights, vWeights);
  memory.set(src.pixels.subarray(rowFirst * srcStride, (rowFirst + rows) * srcStride), source);
  passes.horizontal(source, srcStride, rows, tmp, width, hStart, hCount, hWeights, h.size);
  passes.vertical(tmp, stride, out, height, vStart, vCount, vWeights, v.size);
  return { pixels: memory.slice(out, out + height * stride), width, height };
}

/**
 * Pillow's NEAREST resize of 8-bit RGB (`Image.resize` hands it to ImagingScaleAffine in
 * libImaging/Geometry.c): output pixel x takes input column (int)(x0), x0 stepping from
 * scale / 2 by `scale` in float64 as Pillow adds it, so the rounding of the running sum is
 * Pillow's too. Returns the pixels of `region` of the resized image.
 */
export function pilResizeNearest(src: RgbImage, outWidth: number, outHeight: number, region: Region = { left: 0, top: 0, width: outWidth, height: outHeight }): RgbImage {
  checkResize(src, outWidth, outHeight, region);
  const { left, top, width, height } = region;
  const columns = nearestIndexes(src.width, outWidth, left, width);
  const rows = nearestIndexes(src.height, outHeight, top, height);
  const out = new Uint8Array(width * height * 3);
  let o = 0;
  for (const y of rows) {
    const row = y * src.width * 3;
    for (const x of columns) {
      const p = row + x * 3;
      out[o++] = src.pixels[p]!;
      out[o++] = src.pixels[p + 1]!;
      out[o++] = src.pixels[p + 2]!;
    }
  }
  return { pixels: out, width, height };
}

/** A region inside the resized image, and pixels that fill their image: else RangeError. */
function checkResize(src: RgbImage, outWidth: number, outHeight: number, region: Region): void {
  const { left, top, width, height } = region;
  if (!(outWidth > 0 && outHeight > 0) || left < 0 || top < 0 || width <= 0 || height <= 0 || left + width > outWidth || top + height > outHeight) {
    throw new RangeError(`region ${JSON.stringify(region)} is not inside ${outWidth}x${outHeight}`);
  }
  if (src.pixels.length !== src.width * src.height * 3) {
    throw new RangeError(`pixels hold ${src.pixels.length} bytes, ${src.width}x${src.height} RGB needs ${src.width * src.height * 3}`);
  }
}

/** Input index of output positions `first … first + n - 1` along one axis, Pillow's way. */
function nearestIndexes(inSize: number, outSize: number, first: number, n: number): Int32Array {
  const scale = inSize / outSize;
  const indexes = new Int32Array(n);
  let at = scale * 0.5;
  for (let i = 0; i < first + n; i++) {
    if (i >= first) indexes[i - first] = Math.min(inSize - 1, Math.trunc(at));
    at += scale;
  }
  return indexes;
}
