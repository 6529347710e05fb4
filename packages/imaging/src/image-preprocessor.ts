import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Piscina } from 'piscina';
import sharp from 'sharp';
import { ErrorCode, ImageError } from '@visionq/api';
import { decodeAndResize, messageOf, type CheckedHeader } from './image-decoder';
import { ACCEPTED_FORMATS, formatName, isAccepted, sniffFormat } from './image-format';
import type { PreprocessSpec, PreprocessedImage } from './preprocess-spec';
import { PixelBudget } from './pixel-budget';
import type { PreprocessOutcome, PreprocessTask } from './preprocess.thread';

/** What one image may cost. Both are checked before any pixel is decoded. */
export interface ImageLimits {
  /** Largest encoded image accepted, in bytes. */
  maxImageBytes: number;
  /** Largest image accepted, as width × height claimed by its header (first frame/page). */
  maxImagePixels: number;
  /** Pixels decoded at once across every image of this preprocessor; default: unbounded. */
  decodePixelsInFlight?: number;
  /**
   * Threads that decode and resize images of a megapixel or more, so preprocessing uses
   * every core and never blocks the caller's event loop for long; 0 = one per available
   * CPU. Default: none, every image on the calling thread.
   */
  threads?: number;
  /** With `threads`: images of fewer pixels stay on the calling thread. Default 1 Mi (2^20). */
  poolFromPixels?: number;
}

/**
 * Decodes images and resizes/crops them exactly as torchvision does with PIL:
 *
 *   img = ImageOps.exif_transpose(Image.open(f)).convert('RGB')
 *   Resize(resizeSize) + CenterCrop((h, w))     — `shorter_side`
 *   Resize((h, w))                              — `direct`
 *   ImageOps.pad(img, (w, h), BILINEAR, color)  — `letterbox`
 *
 * sharp (libvips, on the libuv thread pool) checks the header and decodes; the resize
 * is a bit-exact port of Pillow's bilinear resampling (see pil-resample.ts),
 * because libvips' own resampling is up to 4 levels off on photos and 10 on upscales.
 * With `threads`, decode and resize run in a pool of worker threads (image-decoder.ts);
 * the header checks and the pixel budget stay here. A spec with `quality: 'fast'` lets
 * large JPEG and WebP images be decoded at 1/2, 1/4 or 1/8 scale first (not exact).
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
  private readonly pool?: Piscina<PreprocessTask, PreprocessOutcome>;
  private readonly poolFromPixels: number;
  private closed?: Promise<void>;

  constructor(limits: ImageLimits) {
    for (const key of ['maxImageBytes', 'maxImagePixels'] as const) {
      if (!Number.isSafeInteger(limits[key]) || limits[key] <= 0) {
        throw new RangeError(`limits.${key} must be a positive integer, got ${limits[key]}`);
      }
    }
    this.limits = { maxImageBytes: limits.maxImageBytes, maxImagePixels: limits.maxImagePixels };
    if (limits.decodePixelsInFlight !== undefined) this.budget = new PixelBudget(limits.decodePixelsInFlight);
    this.poolFromPixels = limits.poolFromPixels ?? POOL_FROM_PIXELS_DEFAULT;
    if (limits.threads !== undefined) {
      if (!Number.isSafeInteger(limits.threads) || limits.threads < 0) throw new RangeError(`limits.threads must be an integer ≥ 0, got ${limits.threads}`);
      const threads = preprocessThreads(limits.threads);
      this.pool = new Piscina<PreprocessTask, PreprocessOutcome>({
        // From src/ (tests) and dist/ alike: threads run the compiled file.
        filename: join(__dirname, '..', 'dist', 'preprocess.thread.js'),
        minThreads: threads,
        maxThreads: threads,
      });
    }
  }

  /** Threads in the pool; 0 when images are preprocessed on the calling thread. */
  get threads(): number {
    return this.pool?.maxThreads ?? 0;
  }

  /** Ends the pool's threads once the images given to them are done. Idempotent. */
  close(): Promise<void> {
    this.closed ??= this.pool?.close() ?? Promise.resolve();
    return this.closed;
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
    const header = await this.checkHeader(input);
    const release = (await this.budget?.acquire(header.width * header.height)) ?? (() => undefined);
    try {
      if (!this.pool || header.width * header.height < this.poolFromPixels) return await decodeAndResize(input, header, spec, this.limits.maxImagePixels);
      const outcome = await this.pool.run({ input, header, spec, maxImagePixels: this.limits.maxImagePixels });
      if ('code' in outcome) throw new ImageError(outcome.code, outcome.message);
      return { pixels: outcome, width: spec.width, height: spec.height };
    } finally {
      release();
    }
  }

  /** Reads the header only: format, claimed size and orientation; refuses what must not be decoded. */
  private async checkHeader(input: Buffer): Promise<CheckedHeader> {
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
    return { format, width, height, orientation: meta.orientation ?? 1, isCmyk: meta.space === 'cmyk' };
  }
}

/**
 * Smaller images are preprocessed on the calling thread even with a pool by default: their decode
 * runs on libuv's threads anyway and their resize takes well under a millisecond, less
 * than handing them to a thread and back (measured by the scale bench: 28×28 PNGs cost a
 * worker 2.0 ms of CPU each inline, 2.6 ms through the pool).
 */
const POOL_FROM_PIXELS_DEFAULT = 1 << 20;

/** One per available CPU for 0. */
function preprocessThreads(requested: number): number {
  return requested === 0 ? availableParallelism() : requested;
}

function unsupported(format: string): ImageError {
  return new ImageError(ErrorCode.UnsupportedFormat, `image format ${format} is not supported; accepted: ${ACCEPTED_FORMATS.join(', ')}`);
}

function checkSpec(spec: PreprocessSpec): void {
  if (!['shorter_side', 'direct', 'letterbox'].includes(spec.resizeMode)) {
    throw new RangeError(`spec.resizeMode must be shorter_side, direct or letterbox, got ${String(spec.resizeMode)}`);
  }
  const sizes: Record<string, number> = { width: spec.width, height: spec.height };
  if (spec.resizeMode === 'shorter_side') sizes.resizeSize = spec.resizeSize;
  for (const [name, value] of Object.entries(sizes)) {
    if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`spec.${name} must be a positive integer, got ${value}`);
  }
}
