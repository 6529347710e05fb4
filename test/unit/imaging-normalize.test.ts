import { expect } from 'chai';
import { IMAGENET_SPEC, writeNormalized, type PreprocessSpec, type PreprocessedImage } from '@visionq/imaging';

const SPEC: PreprocessSpec = { ...IMAGENET_SPEC, height: 2, width: 3, resizeSize: 4 };

/** torchvision in float32: ToTensor (v / 255), then Normalize ((x - mean) / std). */
function torchValue(v: number, mean: number, std: number, scale = 255): number {
  const f = Math.fround;
  return f(f(f(v / scale) - f(mean)) / f(std));
}

// 3×2 image; pixel i is (i*40, i*40 + 1, 255 - i*40).
const image: PreprocessedImage = {
  width: 3,
  height: 2,
  pixels: new Uint8Array(Array.from({ length: 6 }, (_, i) => [i * 40, i * 40 + 1, 255 - i * 40]).flat()),
};

describe('writeNormalized', () => {
  it('writes planar RGB float32 with the exact torchvision values into its slot only', () => {
    const target = new Float32Array(2 + 18 + 2).fill(-99);
    writeNormalized(image, SPEC, target, 2);
    expect([...target.subarray(0, 2), ...target.subarray(20)]).to.deep.equal([-99, -99, -99, -99]);
    for (let i = 0; i < 6; i++) {
      expect(target[2 + i]).to.equal(torchValue(i * 40, 0.485, 0.229));
      expect(target[2 + 6 + i]).to.equal(torchValue(i * 40 + 1, 0.456, 0.224));
      expect(target[2 + 12 + i]).to.equal(torchValue(255 - i * 40, 0.406, 0.225));
    }
  });

  it('BGR puts blue first, with mean/std given in the model\'s (BGR) order', () => {
    const bgr: PreprocessSpec = { ...SPEC, channelOrder: 'BGR', mean: [103.53, 116.28, 123.675], std: [57.375, 57.12, 58.395], scale: 1 };
    const target = new Float32Array(18);
    writeNormalized(image, bgr, target, 0);
    for (let i = 0; i < 6; i++) {
      expect(target[i]).to.equal(torchValue(255 - i * 40, 103.53, 57.375, 1));
      expect(target[6 + i]).to.equal(torchValue(i * 40 + 1, 116.28, 57.12, 1));
      expect(target[12 + i]).to.equal(torchValue(i * 40, 123.675, 58.395, 1));
    }
  });

  it('refuses a slot that does not fit, an image of the wrong size and a zero std', () => {
    expect(() => writeNormalized(image, SPEC, new Float32Array(18), 1)).to.throw(RangeError, /does not fit/);
    expect(() => writeNormalized(image, { ...SPEC, width: 2, height: 3 }, new Float32Array(18), 0)).to.throw(RangeError, /spec wants/);
    expect(() => writeNormalized(image, { ...SPEC, std: [1, 0, 1] }, new Float32Array(18), 0)).to.throw(RangeError, /std/);
  });
});
