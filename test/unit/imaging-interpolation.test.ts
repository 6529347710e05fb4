import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { IMAGENET_SPEC, ImagePreprocessor, type Interpolation, type PreprocessSpec } from '@visionq/imaging';

/**
 * Parity with torchvision's PIL path for the other interpolations, against what
 * tools/parity/make_interpolation_reference.py stored (torchvision 0.14, Pillow 9.4):
 * `Resize(256, interpolation) + CenterCrop(224)` and `Resize((224, 224), interpolation)`.
 */
const FIXTURES = path.join(__dirname, '..', 'fixtures');
const SOURCES = { rocket: 'rocket.jpg', astronaut: 'astronaut.png', coffee: 'coffee.png' };
const INTERPOLATIONS: Interpolation[] = ['bicubic', 'nearest'];
const MODES: Array<PreprocessSpec['resizeMode']> = ['shorter_side', 'direct'];

async function referencePixels(file: string): Promise<Buffer> {
  const { data, info } = await sharp(path.join(FIXTURES, 'parity', 'interpolation', file), { ignoreIcc: true }).raw().toBuffer({ resolveWithObject: true });
  expect([info.width, info.height, info.channels]).to.deep.equal([224, 224, 3]);
  return data;
}

describe('imaging parity with torchvision for bicubic and nearest (PIL path)', () => {
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

  it('bilinear stays the default, and each interpolation gives different pixels', async () => {
    const bytes = readFileSync(path.join(FIXTURES, 'photos', 'rocket.jpg'));
    const by = async (interpolation?: Interpolation) => Buffer.from((await preprocessor.preprocess(bytes, { ...IMAGENET_SPEC, ...(interpolation ? { interpolation } : {}) })).pixels);
    const [unset, bilinear, bicubic, nearest] = await Promise.all([by(), by('bilinear'), by('bicubic'), by('nearest')]);
    expect(unset.equals(bilinear)).to.equal(true);
    expect(bilinear.equals(bicubic) || bilinear.equals(nearest) || bicubic.equals(nearest)).to.equal(false);
  });
});
