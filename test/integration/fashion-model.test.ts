import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '@visionq/config';
import { openClassifier } from '@visionq/inference';
import { createLogger } from '@visionq/observability';
import { BUNDLED_MODELS_DIR, FASHION_DIR } from '../support/model-fixtures';

interface Expected {
  count: number;
  accuracy: number;
  images: Array<{ file: string; label: number; predicted: number; top1_probability: number }>;
}

describe('bundled fashion-vgg model on real Fashion-MNIST test images', function () {
  this.timeout(120_000);

  it('scores what the training script reported for the committed sample, image by image', async () => {
    const expected: Expected = JSON.parse(await readFile(join(FASHION_DIR, 'expected.json'), 'utf8'));
    expect(expected.images).to.have.length(expected.count);
    const logger = createLogger({ silent: true });
    const config = loadConfig({ MODELS_DIR: BUNDLED_MODELS_DIR, MAX_BATCH_SIZE: '16', MAX_QUEUE_DELAY_MS: '5', MAX_IMAGE_BYTES: String(1 << 20), MAX_IMAGE_PIXELS: String(1 << 20) });
    const { classifier, close } = await openClassifier(config, { logger, only: ['fashion-vgg'], warmup: false });
    try {
      const results = await Promise.all(
        expected.images.map(async (image) => classifier.classify(image.file, await readFile(join(FASHION_DIR, image.file)), 'fashion-vgg', 1)),
      );
      let correct = 0;
      expected.images.forEach((image, i) => {
        const result = results[i]!;
        if (!('predictions' in result)) throw new Error(`${image.file}: ${result.error.message}`);
        const top = result.predictions[0]!;
        // Same preprocessing, same weights: PyTorch's answer, to float precision.
        expect(top.class_id, image.file).to.equal(image.predicted);
        expect(top.probability, image.file).to.be.closeTo(image.top1_probability, 1e-3);
        if (top.class_id === image.label) correct++;
      });
      expect(correct / expected.count).to.equal(expected.accuracy);
      expect(expected.accuracy).to.be.greaterThan(0.85);
    } finally {
      await close();
    }
  });
});
