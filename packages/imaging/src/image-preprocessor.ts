import sharp from 'sharp';
import { ErrorCode, ImageError } from '@visionq/api';
import { ACCEPTED_FORMATS, formatName, isAccepted, sniffFormat } from './image-format';
import { cmykToRgbLikePil } from './pil-convert';
import { pilResizeBilinear, type RgbImage } from './pil-resample';
import type { PreprocessSpec, PreprocessedImage } from './preprocess-spec';
import { PixelBudget } from './pixel-budget';
import { planResize } from './resize-plan';

/** What one image may cost. Both are checked before any pixel is decoded. */
export interface ImageLimits {
  /** Largest encoded image accepted, in bytes. */
  maxImageBytes: number;
  /** Largest image accepted, as width × height claimed by its header (first frame/page). */
  maxImagePixels: number;
  /** Pixels decoded at once across every image of this preprocessor; default: unbounded. */
  decodePixelsInFlight?: number;
}

/**
 * Decodes images and resizes/crops them exactly as torchvision does with PIL:
 *
 *   img = ImageOps.exif_transpose(Image.open(f)).convert('RGB')
 *   Resize(resizeSize) + CenterCrop((h, w))     — `shorter_side`
 *   Resize((h, w))                              — `direct`
 *
 * sharp (libvips, on the libuv thread pool) checks the header and decodes; the resize
 * is a bit-exact TypeScript port of Pillow's bilinear resampling (see pil-resample.ts),
 * because libvips' own resampling is up to 4 levels off on photos and 10 on upscales.
 * Decoding follows PIL too: embedded ICC profiles are ignored (PIL never applies
 * them), alpha is dropped without compositing, CMYK is converted with PIL's formula.
 *
 * Bad input never throws anything but an {@link ImageError}:
 * - `image_too_large`: more bytes than `maxImageBytes`, or a header claiming more than
 *   `maxImagePixels` (refused from the header alone, so a decompression bomb costs
 *   nothing; sharp's `limitInputPixels` guards the decode as well).
 * - `unsupported_format`: a format other than JPEG, PNG, WebP, AVIF, TIFF, GIF —
 *   known by its signature (PDF, SVG, HEIC, JPEG 2000, JPEG XL, BMP, PPM, …, refused
 *   before any decoder parses it) or by sharp's header reader.
 * - `image_decode_failed`: empty, unidentifiable (text, random bytes), truncated or
 *   otherwise undecodable data.
 */
export class ImagePreprocessor {
  private readonly limits: ImageLimits;
  /** Bounds the memory of decoding: pixels of the images decoded and being resized now. */
  readonly budget?: PixelBudget;

  constructor(limits: ImageLimits) {
    for (const key of ['maxImageBytes', 'maxImagePixels'] as const) {
      if (!Number.isSafeInteger(limits[key]) || limits[key] <= 0) {
        throw new RangeError(`limits.${key} must be a positive integer, got ${limits[key]}`);
      }
    }
    this.limits = { maxImageBytes: limits.maxImageBytes, maxImagePixels: limits.maxImagePixels };
    if (limits.decodePixelsInFlight !== undefined) this.budget = new PixelBudget(limits.decodePixelsInFlight);
  }

  /**
   * Decodes and resizes/crops one image per `spec`. Throws ImageError (code
   * image_decode_failed | image_too_large | unsupported_format) — never anything else
   * for bad input.
   */
  async preprocess(input: Buffer, spec: PreprocessSpec): Promise<PreprocessedImage> {
    if (!(input instanceof Uint8Array)) throw new TypeError('input must be a Buffer');
    checkSpec(spec);
    if (input.length === 0) throw new ImageError(ErrorCode.ImageDecodeFailed, 'image is empty (0 bytes)');
    if (input.length > this.limits.maxImageBytes) {
      throw new ImageError(
        ErrorCode.ImageTooLarge,
        `image is ${input.length} bytes, more than the limit of ${this.limits.maxImageBytes} bytes`,
      );
    }
    const { isCmyk, pixels } = await this.checkHeader(input);
    const release = (await this.budget?.acquire(pixels)) ?? (() => undefined);
    try {
      return resizeAndCrop(await this.decode(input, isCmyk), spec);
    } finally {
      release();
    }
  }

  /** Reads the header only: format and claimed size. Resolves whether the image is CMYK, and its pixels. */
  private async checkHeader(input: Buffer): Promise<{ isCmyk: boolean; pixels: number }> {
    const sniffed = sniffFormat(input);
    if (sniffed !== undefined && !isAccepted(sniffed)) throw unsupported(sniffed);
    let meta: sharp.Metadata;
    try {
      // No pixel limit here: we want the claimed size, to refuse it with its numbers.
      meta = await sharp(input, { limitInputPixels: false, failOn: 'error' }).metadata();
    } catch (err) {
      const what = sniffed ? `${sniffed} image header cannot be read` : 'bytes are not a recognised image';
      throw new ImageError(ErrorCode.ImageDecodeFailed, `${what}: ${messageOf(err)}`, [], { cause: err });
    }
    const format = formatName(meta.format ?? 'unknown', meta.compression);
    if (!isAccepted(format)) throw unsupported(format);
    const { width, height } = meta;
    if (!width || !height) throw new ImageError(ErrorCode.ImageDecodeFailed, `${format} image has no dimensions in its header`);
    if (width * height > this.limits.maxImagePixels) {
      throw new ImageError(
        ErrorCode.ImageTooLarge,
        `${format} image claims ${width}x${height} = ${width * height} pixels, more than the limit of ${this.limits.maxImagePixels}`,
      );
    }
    return { isCmyk: meta.space === 'cmyk', pixels: width * height };
  }

  /** Decodes to upright 8-bit RGB, the way PIL's exif_transpose + convert('RGB') would. */
  private async decode(input: Buffer, isCmyk: boolean): Promise<RgbImage> {
    try {
      const image = sharp(input, {
        // Truncation and decoder errors fail; warnings (trailing bytes, corrupt entropy
        // data) do not — PIL decodes those too.
        failOn: 'error',
        limitInputPixels: this.limits.maxImagePixels,
        // PIL never applies embedded ICC profiles: torchvision models saw the raw values.
        ignoreIcc: true,
      })
        .autoOrient()
        .removeAlpha();
      if (isCmyk) {
        const { data, info } = await image
          .pipelineColourspace('cmyk')
          .toColourspace('cmyk')
          .raw({ depth: 'uchar' })
          .toBuffer({ resolveWithObject: true });
        checkChannels(info.channels, 4);
        return { pixels: cmykToRgbLikePil(data, info.width * info.height), width: info.width, height: info.height };
      }
      const { data, info } = await image.toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
      checkChannels(info.channels, 3);
      return { pixels: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
    } catch (err) {
      if (err instanceof ImageError) throw err;
      if (/exceeds pixel limit/i.test(messageOf(err))) {
        throw new ImageError(ErrorCode.ImageTooLarge, `image exceeds the limit of ${this.limits.maxImagePixels} pixels`, [], { cause: err });
      }
      throw new ImageError(ErrorCode.ImageDecodeFailed, `image cannot be decoded: ${messageOf(err)}`, [], { cause: err });
    }
  }
}

/** Resize + centre crop (or direct resize) of the decoded image, padding with black where the crop overhangs. */
async function resizeAndCrop(img: RgbImage, spec: PreprocessSpec): Promise<PreprocessedImage> {
  const plan = planResize(img.width, img.height, spec);
  const left = Math.max(plan.left, 0);
  const top = Math.max(plan.top, 0);
  const right = Math.min(plan.left + plan.width, plan.resizedWidth);
  const bottom = Math.min(plan.top + plan.height, plan.resizedHeight);
  const inside = await pilResizeBilinear(img, plan.resizedWidth, plan.resizedHeight, {
    left,
    top,
    width: right - left,
    height: bottom - top,
  });
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

function unsupported(format: string): ImageError {
  return new ImageError(ErrorCode.UnsupportedFormat, `image format ${format} is not supported; accepted: ${ACCEPTED_FORMATS.join(', ')}`);
}

function checkChannels(actual: number, expected: number): void {
  if (actual !== expected) {
    throw new ImageError(ErrorCode.ImageDecodeFailed, `image decoded to ${actual} channels, expected ${expected}`);
  }
}

/** sharp's messages can span lines (libheif lists every seek); keep the first and last. */
function messageOf(err: unknown): string {
  const lines = (err instanceof Error ? err.message : String(err)).split('\n').map((l) => l.trim()).filter(Boolean);
  if (lines.length <= 2) return lines.join(': ');
  return `${lines[0]} … ${lines[lines.length - 1]}`;
}

function checkSpec(spec: PreprocessSpec): void {
  if (spec.resizeMode !== 'shorter_side' && spec.resizeMode !== 'direct') {
    throw new RangeError(`spec.resizeMode must be shorter_side or direct, got ${String(spec.resizeMode)}`);
  }
  const sizes: Record<string, number> = { width: spec.width, height: spec.height };
  if (spec.resizeMode === 'shorter_side') sizes.resizeSize = spec.resizeSize;
  for (const [name, value] of Object.entries(sizes)) {
    if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`spec.${name} must be a positive integer, got ${value}`);
  }
}
