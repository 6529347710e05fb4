import sharp from 'sharp';
import { ErrorCode, ImageError } from '@visionq/api';
import { cmykToRgbLikePil } from './pil-convert';
import { pilResizeBilinear, type RgbImage } from './pil-resample';
import type { PreprocessSpec, PreprocessedImage } from './preprocess-spec';
import { planResize } from './resize-plan';

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
  return resizeAndCrop(await decode(input, header, shrink, maxImagePixels), spec);
}

/** Formats whose decoders can shrink while decoding (JPEG in the DCT, WebP in libwebp's scaler). */
const SHRINKABLE = new Set(['jpeg', 'webp']);

/**
 * The `fast` quality's load-time shrink: the largest of 8, 4, 2 that leaves the decoded
 * image no smaller than what the exact resize then makes of it (the shorter side's target,
 * or the direct size), so the exact bilinear still only shrinks. 1 when nothing applies.
 */
export function shrinkOnLoad(header: CheckedHeader, spec: PreprocessSpec): number {
  if (!SHRINKABLE.has(header.format) || header.isCmyk) return 1;
  const [width, height] = header.orientation >= 5 ? [header.height, header.width] : [header.width, header.height];
  for (const factor of [8, 4, 2]) {
    const w = Math.floor(width / factor);
    const h = Math.floor(height / factor);
    const fits = spec.resizeMode === 'shorter_side' ? Math.min(w, h) >= spec.resizeSize : w >= spec.width && h >= spec.height;
    if (fits) return factor;
  }
  return 1;
}

/** Decodes to upright 8-bit RGB, the way PIL's exif_transpose + convert('RGB') would (shrunk first when `shrink` > 1). */
async function decode(input: Uint8Array, header: CheckedHeader, shrink: number, maxImagePixels: number): Promise<RgbImage> {
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
    if (shrink > 1) {
      // Asking for exactly 1/shrink of the size makes libvips decode at that scale (JPEG's
      // DCT scaling, libwebp's scaler) and leave the rest as is: the remaining factor is 1
      // (or a pixel's rounding, taken by nearest neighbour).
      const [width, height] = header.orientation >= 5 ? [header.height, header.width] : [header.width, header.height];
      image = image.resize(Math.floor(width / shrink), Math.floor(height / shrink), { fit: 'fill', kernel: 'nearest', fastShrinkOnLoad: true });
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

/** Resize + centre crop (or direct resize) of the decoded image, padding with black where the crop overhangs. */
function resizeAndCrop(img: RgbImage, spec: PreprocessSpec): PreprocessedImage {
  const plan = planResize(img.width, img.height, spec);
  const left = Math.max(plan.left, 0);
  const top = Math.max(plan.top, 0);
  const right = Math.min(plan.left + plan.width, plan.resizedWidth);
  const bottom = Math.min(plan.top + plan.height, plan.resizedHeight);
  const inside = pilResizeBilinear(img, plan.resizedWidth, plan.resizedHeight, { left, top, width: right - left, height: bottom - top });
  if (inside.width === plan.width && inside.height === plan.height) return inside;
  // CenterCrop of an image smaller than the crop: torchvision pads with zeros.
  const pixels = new Uint8Array(plan.width * plan.height * 3);
  const rowBytes = inside.width * 3;
  for (let y = 0; y < inside.height; y++) {
    const to = ((top - plan.top + y) * plan.width + (left - plan.left)) * 3;
    pixels.set(inside.pixels.subarray(y * rowBytes, (y + 1) * rowBytes), to);
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
