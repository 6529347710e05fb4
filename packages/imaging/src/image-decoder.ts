import sharp from 'sharp';
import { ErrorCode, ImageError } from '@visionq/api';
import { cmykToRgbLikePil } from './pil-convert';
import { pilResize, pilResizeNearest, sourceWindow, type Region, type RgbImage, type SourceWindow } from './pil-resample';
import type { PreprocessSpec, PreprocessedImage } from './preprocess-spec';
import { planResize, type ResizePlan } from './resize-plan';

/** What the header said about an image that passed the checks: all decoding needs to know. */
export interface CheckedHeader {
  format: string;
  /** Stored size (before the EXIF orientation is applied). */
  width: number;
  height: number;
  /** EXIF orientation 1–8 (5–8 swap width and height). */
  orientation: number;
  isCmyk: boolean;
}

/**
 * The CPU-heavy half of preprocessing: decode (sharp) and resize/crop (the Pillow-exact
 * resampler). Runs on the calling thread or in a pool thread (preprocess.thread.ts); the
 * header checks and pixel budget stay with the caller.
 */
export async function decodeAndResize(input: Uint8Array, header: CheckedHeader, spec: PreprocessSpec, maxImagePixels: number): Promise<PreprocessedImage> {
  const shrink = spec.quality === 'fast' ? shrinkOnLoad(header, spec) : 1;
  if (shrink > 1) {
    const image = await decode(input, header, { shrink }, maxImagePixels);
    return resizeAndCrop(image, planResize(image.width, image.height, spec), spec);
  }
  const [width, height] = upright(header);
  const plan = planResize(width, height, spec);
  // Only the part of the image the crop reads is decoded and handed over: libvips skips
  // converting the rest, and stops decoding below its last row.
  const filter = spec.interpolation ?? 'bilinear';
  const window =
    WINDOWED.has(header.format) && filter !== 'nearest' ? sourceWindow(width, height, plan.resizedWidth, plan.resizedHeight, inside(plan), filter) : undefined;
  const image = await decode(input, header, { window }, maxImagePixels);
  return resizeAndCrop(image, plan, spec, window && { left: window.left, top: window.top, fullWidth: width, fullHeight: height });
}

/** Formats whose decoders can shrink while decoding (JPEG in the DCT, WebP in libwebp's scaler). */
const SHRINKABLE = new Set(['jpeg', 'webp']);
/** Formats decoded row by row, whose header size is the decoded size: a window of them can be decoded alone. */
const WINDOWED = new Set(['jpeg', 'png', 'webp']);

/** Width and height once the EXIF orientation is applied. */
function upright(header: CheckedHeader): [number, number] {
  return header.orientation >= 5 ? [header.height, header.width] : [header.width, header.height];
}

/** The part of the crop window inside the resized image (CenterCrop pads the rest). */
function inside(plan: ResizePlan): Region {
  const left = Math.max(plan.left, 0);
  const top = Math.max(plan.top, 0);
  const right = Math.min(plan.left + plan.width, plan.resizedWidth);
  const bottom = Math.min(plan.top + plan.height, plan.resizedHeight);
  return { left, top, width: right - left, height: bottom - top };
}

/**
 * The `fast` quality's load-time shrink: the largest of 8, 4, 2 that leaves the decoded
 * image no smaller than what the exact resize then makes of it (the shorter side's target,
 * or the direct size), so the exact bilinear still only shrinks. 1 when nothing applies.
 */
export function shrinkOnLoad(header: CheckedHeader, spec: PreprocessSpec): number {
  if (!SHRINKABLE.has(header.format) || header.isCmyk) return 1;
  const [width, height] = upright(header);
  for (const factor of [8, 4, 2]) {
    const w = Math.floor(width / factor);
    const h = Math.floor(height / factor);
    const fits = spec.resizeMode === 'shorter_side' ? Math.min(w, h) >= spec.resizeSize : w >= spec.width && h >= spec.height;
    if (fits) return factor;
  }
  return 1;
}

/**
 * Decodes to upright 8-bit RGB, the way PIL's exif_transpose + convert('RGB') would:
 * shrunk on load by `shrink`, or only `window` of it (upright coordinates).
 */
async function decode(input: Uint8Array, header: CheckedHeader, part: { shrink?: number; window?: Region }, maxImagePixels: number): Promise<RgbImage> {
  try {
    let image = sharp(input, {
      // Truncation and decoder errors fail; warnings (trailing bytes, corrupt entropy
      // data) do not — PIL decodes those too.
      failOn: 'error',
      limitInputPixels: maxImagePixels,
      // PIL never applies embedded ICC profiles: torchvision models saw the raw values.
      ignoreIcc: true,
    })
      .autoOrient()
      .removeAlpha();
    const { shrink = 1, window } = part;
    if (shrink > 1) {
      // Asking for exactly 1/shrink of the size makes libvips decode at that scale (JPEG's
      // DCT scaling, libwebp's scaler) and leave the rest as is: the remaining factor is 1
      // (or a pixel's rounding, taken by nearest neighbour).
      const [width, height] = upright(header);
      image = image.resize(Math.floor(width / shrink), Math.floor(height / shrink), { fit: 'fill', kernel: 'nearest', fastShrinkOnLoad: true });
    } else if (window) {
      image = image.extract(window);
    }
    if (header.isCmyk) {
      const { data, info } = await image.pipelineColourspace('cmyk').toColourspace('cmyk').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
      checkChannels(info.channels, 4);
      return { pixels: cmykToRgbLikePil(data, info.width * info.height), width: info.width, height: info.height };
    }
    const { data, info } = await image.toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    checkChannels(info.channels, 3);
    return { pixels: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
  } catch (err) {
    if (err instanceof ImageError) throw err;
    if (/exceeds pixel limit/i.test(messageOf(err))) {
      throw new ImageError(ErrorCode.ImageTooLarge, `image exceeds the limit of ${maxImagePixels} pixels`, [], { cause: err });
    }
    throw new ImageError(ErrorCode.ImageDecodeFailed, `image cannot be decoded: ${messageOf(err)}`, [], { cause: err });
  }
}

/**
 * Resize + centre crop (or direct resize) of the decoded image (or of its `window`),
 * padding with black where the crop overhangs.
 */
function resizeAndCrop(img: RgbImage, plan: ResizePlan, spec: PreprocessSpec, window?: SourceWindow): PreprocessedImage {
  const interpolation = spec.interpolation ?? 'bilinear';
  const padValue = spec.padValue ?? [0, 0, 0];
  const region = inside(plan);
  const { left, top } = region;
  const resized =
    interpolation === 'nearest'
      ? pilResizeNearest(img, plan.resizedWidth, plan.resizedHeight, region)
      : pilResize(img, plan.resizedWidth, plan.resizedHeight, region, window, interpolation);
  if (resized.width === plan.width && resized.height === plan.height) return resized;
  // CenterCrop of an image smaller than the crop (torchvision pads with zeros), or a letterbox.
  const pixels = new Uint8Array(plan.width * plan.height * 3);
  const [r, g, b] = padValue;
  if (r !== 0 || g !== 0 || b !== 0) {
    for (let p = 0; p < pixels.length; p += 3) {
      pixels[p] = r;
      pixels[p + 1] = g;
      pixels[p + 2] = b;
    }
  }
  const rowBytes = resized.width * 3;
  for (let y = 0; y < resized.height; y++) {
    const to = ((top - plan.top + y) * plan.width + (left - plan.left)) * 3;
    pixels.set(resized.pixels.subarray(y * rowBytes, (y + 1) * rowBytes), to);
  }
  return { pixels, width: plan.width, height: plan.height };
}

function checkChannels(actual: number, expected: number): void {
  if (actual !== expected) {
    throw new ImageError(ErrorCode.ImageDecodeFailed, `image decoded to ${actual} channels, expected ${expected}`);
  }
}

/** sharp's messages can span lines (libheif lists every seek); keep the first and last. */
export function messageOf(err: unknown): string {
  const lines = (err instanceof Error ? err.message : String(err)).split('\n').map((l) => l.trim()).filter(Boolean);
  if (lines.length <= 2) return lines.join(': ');
  return `${lines[0]} … ${lines[lines.length - 1]}`;
}
