import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { IMAGENET_SPEC, ImagePreprocessor, type Interpolation, type PreprocessSpec } from '@visionq/imaging';

/**
 * Parity with torchvision's PIL path for the other interpolations, and with Pillow's
 * `ImageOps.pad` for the letterbox, against what tools/parity/make_modes_reference.py
 * stored (torchvision 0.14, Pillow 9.4): `Resize(256, interpolation) + CenterCrop(224)`,
 * `Resize((224, 224), interpolation)` and `ImageOps.pad(img, (w, h), BILINEAR, 114)`.
 */
const FIXTURES = path.join(__dirname, '..', 'fixtures');
const SOURCES = { rocket: 'rocket.jpg', astronaut: 'astronaut.png', coffee: 'coffee.png' };
const INTERPOLATIONS: Interpolation[] = ['bicubic', 'nearest'];
const MODES: Array<PreprocessSpec['resizeMode']> = ['shorter_side', 'direct'];

async function referencePixels(file: string, width = 224, height = 224): Promise<Buffer> {
  const { data, info } = await sharp(path.join(FIXTURES, 'parity', 'modes', file), { ignoreIcc: true }).raw().toBuffer({ resolveWithObject: true });
  expect([info.width, info.height, info.channels]).to.deep.equal([width, height, 3]);
  return data;
}

describe('imaging parity with torchvision and Pillow for bicubic, nearest and letterbox (PIL path)', () => {
  const preprocessor = new ImagePreprocessor({ maxImageBytes: 20_000_000, maxImagePixels: 40_000_000 });

  for (const [stem, file] of Object.entries(SOURCES)) {
    for (const interpolation of INTERPOLATIONS) {
      for (const resizeMode of MODES) {
        it(`${file} ${resizeMode} ${interpolation}: the same bytes`, async () => {
          const out = await preprocessor.preprocess(readFileSync(path.join(FIXTURES, 'photos', file)), { ...IMAGENET_SPEC, resizeMode, interpolation });
          const expected = await referencePixels(`${stem}.${resizeMode}.${interpolation}.png`);
          let differing = 0;
          for (let i = 0; i < expected.length; i++) if (out.pixels[i] !== expected[i]) differing++;
          expect(differing, 'values that differ from Pillow').to.equal(0);
        });
      }
    }
  }

  for (const [stem, file] of Object.entries(SOURCES)) {
    for (const [width, height] of [[224, 224], [256, 160]] as const) {
      it(`${file} letterboxed into ${width}x${height} on grey 114: the bytes of ImageOps.pad`, async () => {
        const spec: PreprocessSpec = { ...IMAGENET_SPEC, resizeMode: 'letterbox', width, height, padValue: [114, 114, 114] };
        const out = await preprocessor.preprocess(readFileSync(path.join(FIXTURES, 'photos', file)), spec);
        expect([out.width, out.height]).to.deep.equal([width, height]);
        const expected = await referencePixels(`${stem}.letterbox.${width}x${height}.png`, width, height);
        let differing = 0;
        for (let i = 0; i < expected.length; i++) if (out.pixels[i] !== expected[i]) differing++;
        expect(differing, 'values that differ from Pillow').to.equal(0);
      });
    }
  }

  it('bilinear stays the default, and each interpolation gives different pixels', async () => {
    const bytes = readFileSync(path.join(FIXTURES, 'photos', 'rocket.jpg'));
    const by = async (interpolation?: Interpolation) => Buffer.from((await preprocessor.preprocess(bytes, { ...IMAGENET_SPEC, ...(interpolation ? { interpolation } : {}) })).pixels);
    const [unset, bilinear, bicubic, nearest] = await Promise.all([by(), by('bilinear'), by('bicubic'), by('nearest')]);
    expect(unset.equals(bilinear)).to.equal(true);
    expect(bilinear.equals(bicubic) || bilinear.equals(nearest) || bicubic.equals(nearest)).to.equal(false);
  });
});
