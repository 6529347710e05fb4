import { expect } from 'chai';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, ModelError, VisionqError } from '@visionq/api';
import { ModelRegistry } from '@visionq/inference';
import { createLogger } from '@visionq/observability';
import { editManifest, tempModelsDir, writeModel } from '../support/model-fixtures';

const logger = createLogger({ silent: true });
const cpu = { providers: ['cpu' as const] };

async function loadError(modelsDir: string): Promise<ModelError> {
  try {
    const registry = await ModelRegistry.load(modelsDir, cpu, { logger });
    await registry.release();
  } catch (err) {
    expect(err).to.be.instanceOf(ModelError);
    return err as ModelError;
  }
  throw new Error('the registry loaded a broken model');
}

describe('model registry (real onnxruntime)', function () {
  let models: { dir: string; cleanup: () => Promise<void> };
  beforeEach(async () => {
    models = await tempModelsDir();
  });
  afterEach(async () => {
    await models.cleanup();
  });

  it('loads every model folder and describes it from the graph', async () => {
    await writeModel(models.dir);
    await writeModel(models.dir, { depth: 13, widthDivisor: 32, numClasses: 3, seed: 2, name: 'other' });
    const registry = await ModelRegistry.load(models.dir, cpu, { logger });
    try {
      const described = registry.describe();
      expect(described.map((m) => m.name)).to.deep.equal(['other', 'tiny-vgg']);
      const tiny = described.find((m) => m.name === 'tiny-vgg')!;
      expect(tiny.input.name).to.equal('input');
      expect(tiny.input.shape.slice(1)).to.deep.equal([3, 224, 224]);
      expect(tiny.input.shape[0]).to.be.a('string');
      expect(tiny.classes).to.equal(10);
      expect(tiny.provider).to.equal('cpu');
      expect(registry.get('other').labels).to.have.length(3);
      expect(registry.get('tiny-vgg').fixedBatchSize).to.equal(undefined);
    } finally {
      await registry.release();
    }
  });

  it('loads only the models asked for', async () => {
    await writeModel(models.dir);
    await writeModel(models.dir, { depth: 11, widthDivisor: 32, numClasses: 3, seed: 2, name: 'other' });
    const registry = await ModelRegistry.load(models.dir, cpu, { logger, only: ['other'] });
    try {
      expect(registry.list().map((m) => m.name)).to.deep.equal(['other']);
      expect(() => registry.get('tiny-vgg')).to.throw(VisionqError).with.property('code', ErrorCode.ModelNotFound);
    } finally {
      await registry.release();
    }
  });

  it('names the model and the field when the manifest disagrees with the graph', async () => {
    const dir = await writeModel(models.dir);
    await editManifest(dir, (m) => {
      m.input.height = 200;
    });
    const error = await loadError(models.dir);
    expect(error.message).to.contain('tiny-vgg').and.contain('input.height').and.contain('200').and.contain('224');
    expect(error.details[0]!.field).to.equal('input.height');
  });

  it('names the input when the manifest names one the graph lacks', async () => {
    const dir = await writeModel(models.dir);
    await editManifest(dir, (m) => {
      m.input.name = 'images';
    });
    const error = await loadError(models.dir);
    expect(error.details[0]!.field).to.equal('input.name');
    expect(error.message).to.contain('"images"').and.contain('inputs: input');
  });

  it('refuses a labels file whose count differs from the graph output', async () => {
    const dir = await writeModel(models.dir);
    await writeFile(join(dir, 'labels.txt'), 'a\nb\nc\n');
    const error = await loadError(models.dir);
    expect(error.details[0]!.field).to.equal('labels');
    expect(error.message).to.contain('3 labels').and.contain('10 classes');
  });

  it('refuses a manifest that breaks the schema, naming the field', async () => {
    const dir = await writeModel(models.dir);
    await editManifest(dir, (m) => {
      m.preprocess.std = [0.2, 0, 0.2];
      m.unknown_key = true;
    });
    const error = await loadError(models.dir);
    const fields = error.details.map((d) => d.field);
    expect(fields).to.include('preprocess.std.1');
    expect(fields).to.include('(root)');
  });

  it('reads the preprocessing a model was trained with: crop_pct, interpolation, letterbox and its pad value', async () => {
    const dir = await writeModel(models.dir);
    await editManifest(dir, (m) => {
      delete m.preprocess.resize_size;
      m.preprocess.crop_pct = 0.9;
      m.preprocess.interpolation = 'bicubic';
      m.preprocess.pad_value = 114;
    });
    let registry = await ModelRegistry.load(models.dir, cpu, { logger });
    try {
      // timm: floor(224 / 0.9) = 248.
      expect(registry.get('tiny-vgg').spec).to.deep.include({ resizeMode: 'shorter_side', resizeSize: 248, interpolation: 'bicubic', padValue: [114, 114, 114] });
    } finally {
      await registry.release();
    }
    await editManifest(dir, (m) => {
      delete m.preprocess.crop_pct;
      m.preprocess.resize_mode = 'letterbox';
      m.preprocess.pad_value = [0, 128, 255];
    });
    registry = await ModelRegistry.load(models.dir, cpu, { logger });
    try {
      expect(registry.get('tiny-vgg').spec).to.deep.include({ resizeMode: 'letterbox', padValue: [0, 128, 255] });
    } finally {
      await registry.release();
    }
    // crop_pct with resize_size: one or the other.
    await editManifest(dir, (m) => {
      m.preprocess.resize_mode = 'shorter_side';
      m.preprocess.resize_size = 256;
      m.preprocess.crop_pct = 0.875;
    });
    const error = await loadError(models.dir);
    expect(error.details[0]!.field).to.equal('preprocess.crop_pct');
    expect(error.message).to.contain('not both');
  });

  it('refuses an ONNX file onnxruntime cannot load', async () => {
    const dir = await writeModel(models.dir);
    await writeFile(join(dir, 'model.onnx'), 'not a model');
    try {
      await ModelRegistry.load(models.dir, cpu, { logger });
      expect.fail('loaded');
    } catch (err) {
      expect(err).to.be.instanceOf(VisionqError);
      expect((err as VisionqError).code).to.equal(ErrorCode.ModelInvalid);
      expect((err as Error).message).to.contain('model.onnx');
    }
  });

  it('refuses an unknown model name in `only`', async () => {
    await writeModel(models.dir);
    try {
      await ModelRegistry.load(models.dir, cpu, { logger, only: ['resnet'] });
      expect.fail('loaded');
    } catch (err) {
      expect((err as VisionqError).code).to.equal(ErrorCode.ModelNotFound);
      expect((err as Error).message).to.contain('tiny-vgg');
    }
  });

  it('falls back to the CPU when a GPU provider cannot load, saying why', async () => {
    await writeModel(models.dir);
    const registry = await ModelRegistry.load(models.dir, { providers: ['tensorrt', 'cuda'] }, { logger });
    try {
      const session = registry.get('tiny-vgg').session;
      expect(session.provider).to.equal('cpu');
      expect(session.fallbacks.map((f) => f.provider)).to.deep.equal(['tensorrt', 'cuda']);
      for (const f of session.fallbacks) expect(f.reason).to.be.a('string').and.not.be.empty;
    } finally {
      await registry.release();
    }
  });
});
