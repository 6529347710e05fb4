/// <reference path="./wasm-globals.d.ts" />
/**
 * Pillow's BILINEAR resize of 8-bit RGB, bit for bit: a port of `ImagingResample` from
 * Pillow's `libImaging/Resample.c` (the code torchvision's `Resize` runs on PIL images).
 *
 * Like Pillow it is separable: a horizontal pass into an 8-bit intermediate image, then
 * a vertical pass. Each output pixel is a triangle-filter average whose support grows
 * with the downscale factor (that is the antialiasing), with coefficients rounded to
 * 22-bit fixed point and sums rounded and clipped exactly as Pillow does.
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

/** Pillow's BILINEAR filter: a triangle of support 1. */
const BILINEAR_SUPPORT = 1;
function bilinear(x: number): number {
  const ax = x < 0 ? -x : x;
  return ax < 1 ? 1 - ax : 0;
}

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
export function sourceWindow(fullWidth: number, fullHeight: number, outWidth: number, outHeight: number, region: Region): Region {
  const span = (inSize: number, outSize: number, first: number, n: number) => {
    const head = computeTaps(inSize, outSize, first, 1);
    const tail = computeTaps(inSize, outSize, first + n - 1, 1);
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
 * Resizes `src` to `outWidth`×`outHeight` with Pillow's BILINEAR filter and returns the
 * pixels of `region` of that result (default: all of it). `region` must lie inside the
 * resized image. With `window`, `src` is that window of the image being resized, and
 * must hold every pixel the region reads.
 */
export function pilResizeBilinear(
  src: RgbImage,
  outWidth: number,
  outHeight: number,
  region: Region = { left: 0, top: 0, width: outWidth, height: outHeight },
  window: SourceWindow = { left: 0, top: 0, fullWidth: src.width, fullHeight: src.height },
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
  const h = computeTaps(window.fullWidth, outWidth, left, width);
  const v = computeTaps(window.fullHeight, outHeight, top, height);
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
