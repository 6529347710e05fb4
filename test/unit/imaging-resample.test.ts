import { expect } from 'chai';
import { IMAGENET_SPEC, type PreprocessSpec } from '@visionq/imaging';
import { pilResize, sourceWindow, type RgbImage } from '../../packages/imaging/src/pil-resample';
import { planResize } from '../../packages/imaging/src/resize-plan';
import { scalarPilResizeBilinear } from '../support/scalar-pil-resample';

/** The 7×5 test card used for the Pillow vectors below: (x*37 + y*91 + c*53 + x*y*11) % 256. */
function testCard(width: number, height: number): RgbImage {
  const pixels = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) pixels[(y * width + x) * 3 + c] = (x * 37 + y * 91 + c * 53 + x * y * 11) % 256;
    }
  }
  return { pixels, width, height };
}

/** Deterministic noise, so sums and clipping get exercised. */
function noise(width: number, height: number, seed: number): RgbImage {
  const pixels = new Uint8Array(width * height * 3);
  let s = seed >>> 0;
  for (let i = 0; i < pixels.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    pixels[i] = s >>> 24;
  }
  return { pixels, width, height };
}

function crop(img: RgbImage, left: number, top: number, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    out.set(img.pixels.subarray(((top + y) * img.width + left) * 3, ((top + y) * img.width + left + width) * 3), y * width * 3);
  }
  return out;
}

const spec = (over: Partial<PreprocessSpec>): PreprocessSpec => ({ ...IMAGENET_SPEC, ...over });

describe('pilResize (Pillow 9.4 Image.resize BILINEAR)', () => {
  // np.asarray(Image.fromarray(card).resize(size, Image.BILINEAR)).tobytes().hex()
  const pillow: Array<[number, number, string]> = [
    [3, 2, '6c888f87848c8382837591757f7c716a8678'],
    [7, 3, '275c915186bb7aaf77a46ba06095ca8abf62b4568b7db259b85f94659a5da06398699e45a44b80518682457aaf91c6694b8048985f9476ab4e30659a7cb179'],
    [13, 9, '00356a0b40751f548933689d477cb15b90c56fa4d983b8ed97ccedabe077bfcc29d3563dde13481e53882b60954176ab568ba06ca1888290979878ad808ec36fa4cc85ba869bb55ab16f70bd477c5186bb5f94c979aee391c6a4abe043c4904add2f647c487d2c6194467b9e5e8fac7799c5869fd483b87c94a68cb085a9a1908e80ac5e94876fb0578c80746b5b885478677082578c6274a94f84b9b6eb20c8ae32e84452a53d723b5c91477cb1679cd187bc67a7c811c65e30bf1b50553b70184d825a8f536f806791668a8978766f9b4c897c64ac538883766e64905c87767f996d8c7e90636fa44b1b5085316693578ca973a8738abf1fae7a34d4265b804c723b708b5287b16ea3b494c960aadf304e83b8669b9b8fc46977ac57457a53616f768b6ba087956e7cb148497e7231668e5b908a73a8886ca1d685baa0b1e6427aaf461b507233689d5f94c98bc06ba3d82044794c0d4277396ea35287bc'],
  ];
  for (const [w, h, hex] of pillow) {
    it(`7×5 → ${w}×${h} matches Pillow byte for byte`, () => {
      const out = pilResize(testCard(7, 5), w, h);
      expect(Buffer.from(out.pixels).toString('hex')).to.equal(hex);
    });
  }

  it('computing a region equals resizing everything and cropping', () => {
    for (const [src, ow, oh] of [
      [noise(97, 61, 1), 40, 25],
      [noise(150, 90, 2), 341, 207],
      [noise(640, 427, 3), 383, 256],
    ] as const) {
      const full = pilResize(src, ow, oh);
      for (const [left, top, w, h] of [[0, 0, ow, oh], [3, 2, ow - 5, oh - 4], [Math.floor(ow / 2), Math.floor(oh / 3), 1, 1]] as const) {
        const part = pilResize(src, ow, oh, { left, top, width: w, height: h });
        expect(Buffer.from(part.pixels).equals(Buffer.from(crop(full, left, top, w, h))), `${src.width}x${src.height}→${ow}x${oh} @${left},${top}`).to.equal(true);
      }
    }
  });

  it('keeps an image of the same size unchanged', () => {
    const src = noise(64, 48, 4);
    expect(Buffer.from(pilResize(src, 64, 48).pixels).equals(Buffer.from(src.pixels))).to.equal(true);
  });

  it('gives the bytes of the scalar port of Pillow it replaced, on sizes and regions of every kind', () => {
    let seed = 11;
    const next = (n: number) => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return 1 + (seed % n);
    };
    for (let i = 0; i < 40; i++) {
      const src = noise(next(300), next(300), i);
      const ow = next(260);
      const oh = next(260);
      const left = next(ow) - 1;
      const top = next(oh) - 1;
      const region = { left, top, width: next(ow - left), height: next(oh - top) };
      const label = `${src.width}x${src.height}→${ow}x${oh} ${JSON.stringify(region)}`;
      expect(Buffer.from(pilResize(src, ow, oh, region).pixels).equals(Buffer.from(scalarPilResizeBilinear(src, ow, oh, region).pixels)), label).to.equal(true);
    }
  });

  it('gives the same bytes from the window of the source a region reads as from the whole source', () => {
    for (const [src, ow, oh, region] of [
      [noise(4032 / 8, 3024 / 8, 9), 341, 256, { left: 58, top: 16, width: 224, height: 224 }],
      [noise(300, 500, 10), 256, 426, { left: 16, top: 101, width: 224, height: 224 }],
      [noise(90, 70, 11), 200, 150, { left: 5, top: 0, width: 190, height: 150 }],
    ] as const) {
      const window = sourceWindow(src.width, src.height, ow, oh, region);
      expect(window.width * window.height, 'a window smaller than the source').to.be.below(src.width * src.height + 1);
      const part = { pixels: crop(src, window.left, window.top, window.width, window.height), width: window.width, height: window.height };
      const from = { left: window.left, top: window.top, fullWidth: src.width, fullHeight: src.height };
      expect(Buffer.from(pilResize(part, ow, oh, region, from).pixels).equals(Buffer.from(pilResize(src, ow, oh, region).pixels))).to.equal(true);
      // One column short of what the region reads is refused, not read out of bounds.
      const short = { pixels: crop(src, window.left, window.top, window.width - 1, window.height), width: window.width - 1, height: window.height };
      expect(() => pilResize(short, ow, oh, region, from)).to.throw(RangeError, /does not hold/);
    }
  });

  it('bicubic (negative lobes, clipped sums): a region, and a window of the source, give the bytes of the whole resize cropped', () => {
    for (const [src, ow, oh, region] of [
      [noise(640, 427, 12), 383, 256, { left: 80, top: 16, width: 224, height: 224 }],
      [noise(90, 70, 13), 200, 150, { left: 5, top: 3, width: 190, height: 140 }],
    ] as const) {
      const full = pilResize(src, ow, oh, undefined, undefined, 'bicubic');
      const cropped = crop(full, region.left, region.top, region.width, region.height);
      expect(Buffer.from(pilResize(src, ow, oh, region, undefined, 'bicubic').pixels).equals(Buffer.from(cropped))).to.equal(true);
      const window = sourceWindow(src.width, src.height, ow, oh, region, 'bicubic');
      const part = { pixels: crop(src, window.left, window.top, window.width, window.height), width: window.width, height: window.height };
      const from = { left: window.left, top: window.top, fullWidth: src.width, fullHeight: src.height };
      expect(Buffer.from(pilResize(part, ow, oh, region, from, 'bicubic').pixels).equals(Buffer.from(cropped))).to.equal(true);
    }
  });

  it('gives the same bytes for an image over the memory it keeps between calls (64 MiB)', () => {
    const big = noise(6000, 5600, 7);
    expect(big.pixels.length).to.be.greaterThan(64 << 20);
    const region = { left: 3, top: 17, width: 5, height: 4 };
    expect(Buffer.from(pilResize(big, 9, 40, region).pixels).equals(Buffer.from(scalarPilResizeBilinear(big, 9, 40, region).pixels))).to.equal(true);
    // And the kept memory still serves smaller images after it.
    const small = noise(320, 200, 8);
    expect(Buffer.from(pilResize(small, 50, 30).pixels).equals(Buffer.from(scalarPilResizeBilinear(small, 50, 30).pixels))).to.equal(true);
  });

  it('rejects regions outside the output and mis-sized pixel buffers', () => {
    const src = noise(10, 10, 6);
    expect(() => pilResize(src, 5, 5, { left: 1, top: 0, width: 5, height: 5 })).to.throw(RangeError);
    expect(() => pilResize({ pixels: new Uint8Array(10), width: 10, height: 10 }, 5, 5)).to.throw(RangeError);
  });
});

describe('planResize (torchvision 0.14 Resize + CenterCrop arithmetic)', () => {
  it('truncates the long side and rounds the crop offset half to even, as Python does', () => {
    // rocket.jpg: int(256 * 640 / 427) = 383; round((383 - 224) / 2) = round(79.5) = 80.
    expect(planResize(640, 427, spec({}))).to.deep.equal({ resizedWidth: 383, resizedHeight: 256, left: 80, top: 16, width: 224, height: 224 });
    // 4032×3024: int(341.33) = 341; round(58.5) = 58, not 59.
    expect(planResize(4032, 3024, spec({}))).to.deep.include({ resizedWidth: 341, left: 58 });
    // Portrait: the width is the shorter side.
    expect(planResize(3024, 4032, spec({}))).to.deep.include({ resizedWidth: 256, resizedHeight: 341, left: 16, top: 58 });
  });

  it('pads (negative offset) when the resized image is smaller than the crop', () => {
    // torchvision pads (224 - 201) // 2 = 11 before, 12 after.
    expect(planResize(201, 300, spec({ resizeSize: 201 }))).to.deep.include({ resizedWidth: 201, left: -11 });
  });

  it('direct mode resizes to the crop size', () => {
    expect(planResize(600, 400, spec({ resizeMode: 'direct', height: 200, width: 100 }))).to.deep.equal({
      resizedWidth: 100,
      resizedHeight: 200,
      left: 0,
      top: 0,
      width: 100,
      height: 200,
    });
  });
});
