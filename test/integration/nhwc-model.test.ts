import { expect } from 'chai';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { onnx } from 'onnx-proto';
import { ModelError } from '@visionq/api';
import { loadConfig } from '@visionq/config';
import { openClassifier } from '@visionq/inference';
import { createLogger } from '@visionq/observability';
import { decodeModel, intsAttribute, node } from '@visionq/quantization';
import { ANKLE_BOOT_PNG, editManifest, PHOTOS_DIR, tempModelsDir, writeModel } from '../support/model-fixtures';

const logger = createLogger({ silent: true });

/**
 * The same graph taking NHWC: its input renamed and fed through a Transpose to NCHW, as
 * an export from a channels-last framework arrives.
 */
async function channelsLast(from: string, to: string): Promise<void> {
  await cp(from, to, { recursive: true });
  const model = decodeModel(await readFile(join(from, 'model.onnx')));
  const graph = model.graph!;
  const input = graph.input![0]!;
  const [n, c, h, w] = input.type!.tensorType!.shape!.dim!;
  const inner = `${input.name}_nchw`;
  for (const consumer of graph.node!) consumer.input = consumer.input!.map((name) => (name === input.name ? inner : name));
  graph.node!.unshift(node('Transpose', [input.name!], [inner], 'to_nchw', [intsAttribute('perm', [0, 3, 1, 2])]) as onnx.NodeProto);
  input.type!.tensorType!.shape!.dim = [n!, h!, w!, c!];
  await writeFile(join(to, 'model.onnx'), onnx.ModelProto.encode(model).finish());
  await editManifest(to, (m) => {
    m.name = 'tiny-vgg-nhwc';
    m.input.layout = 'NHWC';
  });
}

describe('a channels-last (NHWC) model (real onnxruntime)', () => {
  it('gets its images interleaved and gives the probabilities of the same graph taking NCHW', async () => {
    const models = await tempModelsDir();
    try {
      const planar = await writeModel(models.dir);
      await channelsLast(planar, join(models.dir, 'tiny-vgg-nhwc'));
      const config = loadConfig({ MODELS_DIR: models.dir, MAX_BATCH_SIZE: '4', MAX_QUEUE_DELAY_MS: '5' });
      const { classifier, registry, close } = await openClassifier(config, { logger, warmup: true });
      try {
        expect(registry.get('tiny-vgg-nhwc').spec.layout).to.equal('NHWC');
        for (const file of [ANKLE_BOOT_PNG, join(PHOTOS_DIR, 'rocket.jpg'), join(PHOTOS_DIR, 'chelsea.png')]) {
          const bytes = await readFile(file);
          const [nchw, nhwc] = await Promise.all(['tiny-vgg', 'tiny-vgg-nhwc'].map((model) => classifier.classify(file, bytes, model, 10)));
          if (!('predictions' in nchw!) || !('predictions' in nhwc!)) throw new Error(`no predictions for ${file}`);
          expect(nhwc.predictions.map((p) => p.label), file).to.deep.equal(nchw.predictions.map((p) => p.label));
          nhwc.predictions.forEach((p, i) => expect(p.probability, `${file} class ${p.label}`).to.be.closeTo(nchw.predictions[i]!.probability, 1e-6));
        }
      } finally {
        await close();
      }
    } finally {
      await models.cleanup();
    }
  });

  it('refuses a manifest whose layout the graph does not have, naming the axis', async () => {
    const models = await tempModelsDir();
    try {
      const planar = await writeModel(models.dir);
      await editManifest(planar, (m) => (m.input.layout = 'NHWC'));
      const config = loadConfig({ MODELS_DIR: models.dir });
      let caught: unknown;
      try {
        await (await openClassifier(config, { logger, warmup: false })).close();
      } catch (err) {
        caught = err;
      }
      expect(caught).to.be.instanceOf(ModelError);
      expect((caught as ModelError).message).to.match(/input\.channels: manifest says 3 but the graph's input "input" has \d+ on axis 3/);
    } finally {
      await models.cleanup();
    }
  });
});
