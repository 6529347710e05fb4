import { expect } from 'chai';
import path from 'node:path';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { ErrorCode, ImageError } from '@visionq/api';
import { IMAGENET_SPEC, ImagePreprocessor, type PreprocessSpec, type PreprocessedImage } from '@visionq/imaging';
import { shrinkOnLoad, type CheckedHeader } from '../../packages/imaging/src/image-decoder';
import { cmykToRgbLikePil } from '../../packages/imaging/src/pil-convert';
import { rejection } from '../support/promises';

const PHOTO = path.join(__dirname, '..', 'fixtures', 'photos', 'chelsea.png');
const SPEC: PreprocessSpec = IMAGENET_SPEC;
const LIMITS = { maxImageBytes: 2_000_000, maxImagePixels: 4_000_000 };
const W = 300;
const H = 200;

/** The photo at 300×200, as a sharp pipeline to encode variants from. */
const photo = (): sharp.Sharp => sharp(PHOTO).resize(W, H);

function meanDiff(a: Uint8Array, b: Uint8Array): number {
  expect(a.length).to.equal(b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

function expectRgb224(out: PreprocessedImage): void {
  expect([out.width, out.height, out.pixels.length]).to.deep.equal([224, 224, 224 * 224 * 3]);
}

function isGrey(out: PreprocessedImage): boolean {
  for (let p = 0; p < out.pixels.length; p += 3) {
    if (out.pixels[p] !== out.pixels[p + 1] || out.pixels[p] !== out.pixels[p + 2]) return false;
  }
  return true;
}

/** Pixel (x, y) of an RGB result. */
const at = (out: PreprocessedImage, x: number, y: number): number[] => [...out.pixels.subarray((y * out.width + x) * 3, (y * out.width + x) * 3 + 3)];

async function imageRejection(promise: Promise<unknown>): Promise<ImageError> {
  const err = await rejection<ImageError>(promise);
  expect(err).to.be.instanceOf(ImageError);
  return err;
}

// A PNG made by hand: signature, IHDR (with a valid CRC), one IDAT, IEND.
function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
function pngChunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
/** A ~100-byte PNG whose header claims width×height RGB pixels. */
function pngClaiming(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', zlib.deflateSync(Buffer.alloc(64))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A 2×2 24-bit BMP (this sharp build has no BMP loader; PIL would read it). */
function tinyBmp(): Buffer {
  const b = Buffer.alloc(54 + 16);
  b.write('BM', 0, 'latin1');
  b.writeUInt32LE(b.length, 2);
  b.writeUInt32LE(54, 10);
  b.writeUInt32LE(40, 14);
  b.writeInt32LE(2, 18);
  b.writeInt32LE(2, 22);
  b.writeUInt16LE(1, 26);
  b.writeUInt16LE(24, 28);
  return b;
}

describe('ImagePreprocessor', () => {
  const preprocessor = new ImagePreprocessor(LIMITS);
  const pooled = new ImagePreprocessor({ ...LIMITS, threads: 2, poolFromPixels: 0 });
  after(() => pooled.close());
  let rgbPng: Buffer;
  let rgbOut: PreprocessedImage;

  before(async () => {
    rgbPng = await photo().png().toBuffer();
    rgbOut = await preprocessor.preprocess(rgbPng, SPEC);
  });

  describe('accepted inputs all become 224×224 8-bit RGB', () => {
    it('RGB PNG', () => expectRgb224(rgbOut));

    it('greyscale and grey+alpha: grey RGB, alpha dropped without compositing', async () => {
      const grey = await photo().toColourspace('b-w').png().toBuffer();
      const greyAlpha = await photo().toColourspace('b-w').ensureAlpha(0.5).png().toBuffer();
      expect((await sharp(grey).metadata()).channels).to.equal(1);
      expect((await sharp(greyAlpha).metadata()).channels).to.equal(2);
      const a = await preprocessor.preprocess(grey, SPEC);
      const b = await preprocessor.preprocess(greyAlpha, SPEC);
      expectRgb224(a);
      expect(isGrey(a)).to.equal(true);
      expect(b.pixels).to.deep.equal(a.pixels);
    });

    it('RGBA with varying (even zero) alpha: the colour channels, as PIL convert("RGB")', async () => {
      const { data } = await photo().raw().toBuffer({ resolveWithObject: true });
      const rgba = Buffer.alloc(W * H * 4);
      for (let i = 0; i < W * H; i++) {
        data.copy(rgba, i * 4, i * 3, i * 3 + 3);
        rgba[i * 4 + 3] = (i % W) < W / 2 ? 0 : (i * 7) & 0xff;
      }
      const png = await sharp(rgba, { raw: { width: W, height: H, channels: 4 } }).png().toBuffer();
      expect((await sharp(png).metadata()).hasAlpha).to.equal(true);
      expect((await preprocessor.preprocess(png, SPEC)).pixels).to.deep.equal(rgbOut.pixels);
    });

    it('palette PNG', async () => {
      const png = await photo().png({ palette: true, effort: 1 }).toBuffer();
      expect((await sharp(png).metadata()).isPalette).to.equal(true);
      const out = await preprocessor.preprocess(png, SPEC);
      expectRgb224(out);
      expect(meanDiff(out.pixels, rgbOut.pixels)).to.be.below(3);
    });

    // 16-bit RGB: PIL keeps the high byte, and so do we. 16-bit grey: PIL opens it as
    // mode I and convert('RGB') clips at 255 (nearly all white); we keep the high byte.
    it('16-bit RGB PNG gives the 8-bit pixels; 16-bit grey becomes grey', async () => {
      const rgb16 = await photo().toColourspace('rgb16').png().toBuffer();
      const grey16 = await photo().toColourspace('grey16').png().toBuffer();
      expect((await sharp(rgb16).metadata()).depth).to.equal('ushort');
      expect((await sharp(grey16).metadata()).depth).to.equal('ushort');
      expect((await preprocessor.preprocess(rgb16, SPEC)).pixels).to.deep.equal(rgbOut.pixels);
      const grey = await preprocessor.preprocess(grey16, SPEC);
      expectRgb224(grey);
      expect(isGrey(grey)).to.equal(true);
    });

    it('CMYK JPEG: converted with PIL\'s formula, embedded profile or not', async () => {
      for (const jpeg of [
        await photo().toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer(),
        await photo().toColourspace('cmyk').withIccProfile('cmyk').jpeg({ quality: 95 }).toBuffer(),
      ]) {
        expect((await sharp(jpeg).metadata()).space).to.equal('cmyk');
        const out = await preprocessor.preprocess(jpeg, SPEC);
        expectRgb224(out);
        // sRGB → CMYK (ICC) → RGB (PIL's naive formula) is not a round trip, but close.
        expect(meanDiff(out.pixels, rgbOut.pixels)).to.be.below(25);
      }
    });

    it('cmykToRgbLikePil matches Pillow 9.4 convert("RGB")', () => {
      const cmyk = new Uint8Array([0, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 255, 10, 200, 77, 30, 128, 128, 128, 128, 255, 255, 255, 0]);
      // From: Image.frombytes('CMYK', (6, 1), cmyk).convert('RGB').tobytes()
      const pil = [255, 255, 255, 0, 255, 255, 0, 0, 0, 216, 49, 157, 63, 63, 63, 0, 0, 0];
      expect([...cmykToRgbLikePil(cmyk, 6)]).to.deep.equal(pil);
    });

    it('lossless WebP and LZW TIFF give the PNG\'s pixels; AVIF and GIF are close', async () => {
      const webp = await photo().webp({ lossless: true }).toBuffer();
      const tiff = await photo().tiff({ compression: 'lzw' }).toBuffer();
      expect((await preprocessor.preprocess(webp, SPEC)).pixels).to.deep.equal(rgbOut.pixels);
      expect((await preprocessor.preprocess(tiff, SPEC)).pixels).to.deep.equal(rgbOut.pixels);
      const avif = await photo().avif({ quality: 80, effort: 0 }).toBuffer();
      const gif = await photo().gif().toBuffer();
      expect((await sharp(avif).metadata()).compression).to.equal('av1');
      for (const lossy of [avif, gif]) {
        const out = await preprocessor.preprocess(lossy, SPEC);
        expectRgb224(out);
        expect(meanDiff(out.pixels, rgbOut.pixels)).to.be.below(6);
      }
    });

    it('animated GIF: the first frame', async () => {
      const frame = (background: string) => sharp({ create: { width: 40, height: 30, channels: 3, background } }).png().toBuffer();
      const frames = [await frame('#ff0000'), await frame('#0000ff')];
      const gif = await sharp(frames, { join: { animated: true } }).gif().toBuffer();
      expect((await sharp(gif).metadata()).pages).to.equal(2);
      const out = await preprocessor.preprocess(gif, SPEC);
      expectRgb224(out);
      expect(at(out, 0, 0)).to.deep.equal([255, 0, 0]);
      expect(at(out, 223, 223)).to.deep.equal([255, 0, 0]);
    });

    it('applies the EXIF orientation', async () => {
      // Stored upright: left half red, right half blue.
      const halves = Buffer.alloc(W * H * 3);
      for (let i = 0; i < W * H; i++) halves.set((i % W) < W / 2 ? [255, 0, 0] : [0, 0, 255], i * 3);
      const stored = () => sharp(halves, { raw: { width: W, height: H, channels: 3 } }).jpeg({ quality: 95 });
      const red = (px: number[]) => px[0]! > 200 && px[2]! < 60;
      const blue = (px: number[]) => px[2]! > 200 && px[0]! < 60;

      const upright = await preprocessor.preprocess(await stored().toBuffer(), SPEC);
      expect(red(at(upright, 5, 112)) && blue(at(upright, 218, 112))).to.equal(true);

      // Orientation 6: display = stored turned 90° clockwise, so the left half goes on top.
      const turned = await stored().withMetadata({ orientation: 6 }).toBuffer();
      expect((await sharp(turned).metadata()).orientation).to.equal(6);
      const out = await preprocessor.preprocess(turned, SPEC);
      expectRgb224(out);
      expect(red(at(out, 112, 5)), 'top is red').to.equal(true);
      expect(blue(at(out, 112, 218)), 'bottom is blue').to.equal(true);

      // Orientation 3: turned 180°, so blue on the left.
      const flipped = await preprocessor.preprocess(await stored().withMetadata({ orientation: 3 }).toBuffer(), SPEC);
      expect(blue(at(flipped, 5, 112)) && red(at(flipped, 218, 112))).to.equal(true);
    });

    it('pads with black when the resized image is smaller than the crop, as CenterCrop does', async () => {
      // 300×200 → Resize(200) keeps 300×200; CenterCrop(224): left 38, 12 black rows above and below.
      const out = await preprocessor.preprocess(rgbPng, { ...SPEC, resizeSize: 200 });
      expectRgb224(out);
      const { data } = await sharp(rgbPng).raw().toBuffer({ resolveWithObject: true });
      for (const y of [0, 11, 212, 223]) expect(at(out, 100, y)).to.deep.equal([0, 0, 0]);
      expect(at(out, 0, 12)).to.deep.equal([...data.subarray(38 * 3, 38 * 3 + 3)]);
      expect(at(out, 223, 211)).to.deep.equal([...data.subarray((199 * W + 38 + 223) * 3, (199 * W + 38 + 223) * 3 + 3)]);
    });
  });

  describe('fast quality: large JPEG and WebP decoded at a reduced scale first', () => {
    const FAST: PreprocessSpec = { ...SPEC, quality: 'fast' };
    const header = (format: string, width: number, height: number, over: Partial<CheckedHeader> = {}): CheckedHeader => ({ format, width, height, orientation: 1, isCmyk: false, ...over });

    it('shrinks by the largest of 8, 4, 2 that stays at or above the resize target', () => {
      expect(shrinkOnLoad(header('jpeg', 4032, 3024), FAST)).to.equal(8); // 504×378: shorter side 378 ≥ 256
      expect(shrinkOnLoad(header('jpeg', 1600, 1200), FAST)).to.equal(4); // 400×300
      expect(shrinkOnLoad(header('webp', 1000, 800), FAST)).to.equal(2); // 500×400; /4 would be 200 < 256
      expect(shrinkOnLoad(header('jpeg', 500, 400), FAST)).to.equal(1);
      expect(shrinkOnLoad(header('jpeg', 4032, 3024), { ...FAST, resizeMode: 'direct', width: 224, height: 400 })).to.equal(4); // 1008×756; /8 is 378 < 400
      expect(shrinkOnLoad(header('jpeg', 2000, 4032, { orientation: 6 }), { ...FAST, resizeMode: 'direct', width: 1000, height: 250 })).to.equal(4); // upright 4032×2000
      for (const other of [header('png', 4032, 3024), header('tiff', 4032, 3024), header('jpeg', 4032, 3024, { isCmyk: true })]) {
        expect(shrinkOnLoad(other, FAST), other.format).to.equal(1);
      }
    });

    it('gives the exact bytes where no shrink applies, and close pixels where one does, on either thread', async () => {
      const small = await photo().jpeg({ quality: 90 }).toBuffer();
      expect(Buffer.from((await preprocessor.preprocess(small, FAST)).pixels).equals(Buffer.from((await preprocessor.preprocess(small, SPEC)).pixels))).to.equal(true);
      // 2048×1536: decoded at 1/4 (512×384), then the same bilinear resize and crop.
      const large = await sharp(PHOTO).resize(2048, 1536).jpeg({ quality: 90 }).toBuffer();
      const exact = await preprocessor.preprocess(large, SPEC);
      const fast = await preprocessor.preprocess(large, FAST);
      expectRgb224(fast);
      expect(Buffer.from(fast.pixels).equals(Buffer.from(exact.pixels)), 'shrunk on load').to.equal(false);
      expect(meanDiff(fast.pixels, exact.pixels), 'mean abs diff from exact (levels)').to.be.below(3);
      expect(Buffer.from((await pooled.preprocess(large, FAST)).pixels).equals(Buffer.from(fast.pixels))).to.equal(true);
      // WebP: libwebp's scaler instead of the DCT.
      const webp = await sharp(PHOTO).resize(2048, 1536).webp({ quality: 90 }).toBuffer();
      const webpFast = await preprocessor.preprocess(webp, FAST);
      expect(Buffer.from(webpFast.pixels).equals(Buffer.from((await preprocessor.preprocess(webp, SPEC)).pixels)), 'webp shrunk on load').to.equal(false);
      expect(meanDiff(webpFast.pixels, (await preprocessor.preprocess(webp, SPEC)).pixels), 'webp: mean abs diff (levels)').to.be.below(3);
      // Stored sideways (EXIF orientation 6): shrunk and turned upright like the exact path.
      const sideways = await sharp(PHOTO).resize(1536, 2048).rotate(-90).jpeg({ quality: 90 }).withMetadata({ orientation: 6 }).toBuffer();
      const upright = await preprocessor.preprocess(sideways, FAST);
      expect(meanDiff(upright.pixels, (await preprocessor.preprocess(sideways, SPEC)).pixels), 'sideways: mean abs diff (levels)').to.be.below(3);
    });
  });

  describe('bad inputs', () => {
    for (const [where, subject] of [['on the calling thread', preprocessor], ['in a pool of threads', pooled]] as const) it(`each kind gets its code while good images beside it still succeed, ${where}`, async () => {
      const jpeg = await photo().jpeg().toBuffer();
      const tiff = await photo().tiff({ compression: 'lzw' }).toBuffer();
      const corruptJpeg = Buffer.from(jpeg);
      for (let i = 0; i < 64; i++) corruptJpeg[(jpeg.length >> 1) + i] = (i * 37) & 0xff;
      const bad: Array<[string, Buffer, ErrorCode, RegExp]> = [
        ['svg', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>'), ErrorCode.UnsupportedFormat, /svg/],
        ['pdf', Buffer.from('%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n'), ErrorCode.UnsupportedFormat, /pdf/],
        ['heic', Buffer.concat([Buffer.from([0, 0, 0, 24]), Buffer.from('ftypheic\0\0\0\0mif1heic', 'latin1'), Buffer.alloc(64)]), ErrorCode.UnsupportedFormat, /heic/],
        ['jpeg 2000', Buffer.concat([Buffer.from([0, 0, 0, 0x0c, 0x6a, 0x50, 0x20, 0x20, 0x0d, 0x0a, 0x87, 0x0a]), Buffer.alloc(64)]), ErrorCode.UnsupportedFormat, /jp2/],
        ['jpeg xl', Buffer.concat([Buffer.from([0xff, 0x0a, 0xfa, 0x7a]), Buffer.alloc(64)]), ErrorCode.UnsupportedFormat, /jxl/],
        ['ppm', Buffer.concat([Buffer.from('P6\n2 2\n255\n', 'latin1'), Buffer.alloc(12)]), ErrorCode.UnsupportedFormat, /ppm/],
        ['bmp', tinyBmp(), ErrorCode.UnsupportedFormat, /bmp/],
        ['text named .jpg', Buffer.from('This is a text file someone named photo.jpg.\n'), ErrorCode.ImageDecodeFailed, /not a recognised image/],
        ['random bytes', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) & 0xff)), ErrorCode.ImageDecodeFailed, /not a recognised image/],
        ['truncated jpeg', jpeg.subarray(0, jpeg.length >> 1), ErrorCode.ImageDecodeFailed, /cannot be decoded/],
        ['truncated png', rgbPng.subarray(0, rgbPng.length >> 1), ErrorCode.ImageDecodeFailed, /cannot be decoded/],
        ['truncated tiff', tiff.subarray(0, tiff.length >> 1), ErrorCode.ImageDecodeFailed, /tiff image header cannot be read/],
        ['empty buffer', Buffer.alloc(0), ErrorCode.ImageDecodeFailed, /empty/],
        ['header bomb', pngClaiming(50_000, 50_000), ErrorCode.ImageTooLarge, /50000x50000 = 2500000000 pixels, more than the limit of 4000000/],
        ['oversized bytes', Buffer.alloc(LIMITS.maxImageBytes + 1), ErrorCode.ImageTooLarge, /2000001 bytes, more than the limit of 2000000/],
      ];
      const good = [rgbPng, jpeg, corruptJpeg];
      const results = await Promise.allSettled([...bad.map(([, input]) => subject.preprocess(input, SPEC)), ...good.map((g) => subject.preprocess(g, SPEC))]);
      bad.forEach(([name, , code, message], i) => {
        const result = results[i]!;
        expect(result.status, name).to.equal('rejected');
        const reason = (result as PromiseRejectedResult).reason as unknown;
        expect(reason, name).to.be.instanceOf(ImageError);
        expect((reason as ImageError).code, name).to.equal(code);
        expect((reason as ImageError).message, name).to.match(message);
      });
      // Corrupt entropy-coded data decodes to garbage rather than failing — as in PIL.
      for (const result of results.slice(bad.length)) {
        expect(result.status).to.equal('fulfilled');
        expectRgb224((result as PromiseFulfilledResult<PreprocessedImage>).value);
      }
    });

    it('refuses a header bomb from the header alone: no pixel of it is ever admitted to decoding', async () => {
      const bomb = pngClaiming(50_000, 50_000);
      expect(bomb.length).to.be.below(200);
      const budgeted = new ImagePreprocessor({ ...LIMITS, decodePixelsInFlight: 1_000_000 });
      const err = await imageRejection(budgeted.preprocess(bomb, SPEC));
      expect(err.code).to.equal(ErrorCode.ImageTooLarge);
      // Every decode holds its pixels in the budget first; the bomb never got that far.
      expect(budgeted.budget!.peak).to.equal(0);
      expectRgb224(await budgeted.preprocess(rgbPng, SPEC));
      expect(budgeted.budget!.peak).to.equal(W * H);
    });

    it('a claimed size just over the pixel limit is refused, just under is decoded', async () => {
      const small = new ImagePreprocessor({ maxImageBytes: LIMITS.maxImageBytes, maxImagePixels: W * H - 1 });
      expect((await imageRejection(small.preprocess(rgbPng, SPEC))).code).to.equal(ErrorCode.ImageTooLarge);
      const exact = new ImagePreprocessor({ maxImageBytes: LIMITS.maxImageBytes, maxImagePixels: W * H });
      expectRgb224(await exact.preprocess(rgbPng, SPEC));
    });

    it('rejects nonsense limits and non-buffer input as programming errors', async () => {
      expect(() => new ImagePreprocessor({ maxImageBytes: 0, maxImagePixels: 1 })).to.throw(RangeError, /maxImageBytes/);
      let caught: unknown;
      try {
        await preprocessor.preprocess('photo.jpg' as unknown as Buffer, SPEC);
      } catch (err) {
        caught = err;
      }
      expect(caught).to.be.instanceOf(TypeError);
    });
  });
});
