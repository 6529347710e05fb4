import { expect } from 'chai';
import sharp from 'sharp';
import { IMAGENET_SPEC, ImagePreprocessor, PixelBudget } from '@visionq/imaging';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('PixelBudget: decode memory bounded by pixels in flight', () => {
  it('admits what fits, holds the rest in arrival order, and never holds more than its capacity', async () => {
    const budget = new PixelBudget(100);
    const order: string[] = [];
    const a = await budget.acquire(60);
    const b = budget.acquire(60).then((release) => (order.push('b'), release));
    const c = budget.acquire(10).then((release) => (order.push('c'), release));
    await tick();
    // c would fit, but waits behind b: a large image is never starved by small ones.
    expect(order).to.deep.equal([]);
    expect(budget.inUse).to.equal(60);
    a();
    a(); // a second release gives nothing back twice
    const releaseB = await b;
    const releaseC = await c;
    expect(order).to.deep.equal(['b', 'c']);
    expect(budget.inUse).to.equal(70);
    releaseB();
    releaseC();
    expect(budget.inUse).to.equal(0);
    expect(budget.peak).to.equal(70);
  });

  it('admits an image larger than the whole budget alone', async () => {
    const budget = new PixelBudget(100);
    const huge = await budget.acquire(1_000);
    expect(budget.inUse).to.equal(100);
    let small = false;
    const waiting = budget.acquire(1).then((release) => ((small = true), release));
    await tick();
    expect(small).to.equal(false);
    huge();
    (await waiting)();
    expect(small).to.equal(true);
  });

  it('rejects a nonsense capacity', () => {
    expect(() => new PixelBudget(0)).to.throw(RangeError);
  });

  it('holds a preprocessor\'s concurrent decodes to DECODE_PIXELS_IN_FLIGHT, every image still decoded', async () => {
    const png = await sharp({ create: { width: 1000, height: 800, channels: 3, background: '#808080' } }).png().toBuffer();
    // Room for two of these at once, however many are asked for.
    const preprocessor = new ImagePreprocessor({ maxImageBytes: 1 << 24, maxImagePixels: 1 << 24, decodePixelsInFlight: 2 * 1000 * 800 });
    const out = await Promise.all(Array.from({ length: 6 }, () => preprocessor.preprocess(png, IMAGENET_SPEC)));
    expect(out.every((image) => image.width === 224 && image.height === 224)).to.equal(true);
    expect(preprocessor.budget!.peak).to.be.within(1000 * 800, 2 * 1000 * 800);
    expect(preprocessor.budget!.inUse).to.equal(0);
  });
});
