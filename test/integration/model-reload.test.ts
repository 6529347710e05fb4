import { expect } from 'chai';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, VisionqError } from '@visionq/api';
import { loadConfig } from '@visionq/config';
import { openClassifier, type Classifier, type LoadedModel } from '@visionq/inference';
import { createLogger } from '@visionq/observability';
import { editManifest, PHOTOS_DIR, tempModelsDir, TINY_VGG, writeModel } from '../support/model-fixtures';

const logger = createLogger({ silent: true });

/** Resolves `release` when called: holds a registry lease open until the test lets go. */
function hold(classifier: Classifier, spec: string): { model: Promise<LoadedModel>; release: () => void; done: Promise<void> } {
  let release!: () => void;
  let got!: (model: LoadedModel) => void;
  const model = new Promise<LoadedModel>((resolve) => (got = resolve));
  const done = classifier.registry.use(spec, async (m) => {
    got(m);
    await new Promise<void>((resolve) => (release = resolve));
  });
  return { model, release: () => release(), done };
}

describe('hot reload of model versions in one process (real onnxruntime)', function () {
  this.timeout(60_000);
  let models: { dir: string; cleanup: () => Promise<void> };
  let classifier: Classifier;
  let source: string;
  let photo: Buffer;

  beforeEach(async () => {
    models = await tempModelsDir();
    source = await writeModel(join(models.dir, '.template'), TINY_VGG);
    await mkdir(join(models.dir, 'cats'));
    await cp(source, join(models.dir, 'cats', '1'), { recursive: true });
    await editManifest(join(models.dir, 'cats', '1'), (m) => (m.name = 'cats'));
    photo = await readFile(join(PHOTOS_DIR, 'chelsea.png'));
    classifier = await openClassifier(loadConfig({ MODELS_DIR: models.dir, WARMUP: 'true', PREFERRED_BATCH_SIZES: '1' }), { logger });
  });
  afterEach(async () => {
    await classifier.close();
    await models.cleanup();
  });

  async function addVersion(version: string): Promise<string> {
    const dir = join(models.dir, 'cats', version);
    await cp(source, dir, { recursive: true });
    await editManifest(dir, (m) => {
      m.name = 'cats';
      m.version = version;
    });
    return dir;
  }

  it('loads a new version, which requests for NAME then get; result lines say which version ran', async () => {
    expect((await classifier.classifier.classify('a.png', photo, 'cats', 3)) as object).to.deep.include({ model: 'cats', model_version: '1' });
    await addVersion('2');
    const { added, gone } = await classifier.reload();
    expect({ added, gone }).to.deep.equal({ added: ['cats@2'], gone: [] });
    expect(classifier.registry.get('cats').ref).to.equal('cats@2');
    const [one, two] = await Promise.all(['cats@1', 'cats'].map((spec) => classifier.classifier.classify('a.png', photo, spec, 3)));
    expect(one).to.deep.include({ image: 'a.png', model: 'cats', model_version: '1' });
    expect(two).to.deep.include({ image: 'a.png', model: 'cats', model_version: '2' });
    // Same weights, same answer: the versions differ only by name here.
    expect((two as any).predictions).to.deep.equal((one as any).predictions);
  });

  it('replaces a changed version: new work gets the new files; the old session ends only after the work that holds it', async () => {
    const held = hold(classifier, 'cats@1');
    const old = await held.model;
    await writeFile(join(models.dir, 'cats', '1', 'labels.txt'), Array.from({ length: 10 }, (_, i) => `renamed ${i}`).join('\n'));
    expect(await classifier.reload()).to.deep.include({ added: [], gone: [] });
    const current = classifier.registry.get('cats@1');
    expect(current).to.not.equal(old);
    expect(current.labels[0]).to.equal('renamed 0');
    const line = (await classifier.classifier.classify('a.png', photo, 'cats', 1)) as any;
    expect(line.predictions[0].label).to.match(/^renamed /);
    // The old session still runs for whoever holds it.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(old.session.alive).to.equal(true);
    held.release();
    await held.done;
    for (let i = 0; i < 1000 && old.session.alive; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(old.session.alive).to.equal(false);
    expect(current.session.alive).to.equal(true);
  });

  it('refuses a version whose graph does not match its manifest, serving on what it served', async () => {
    const bad = await addVersion('2');
    await writeFile(join(bad, 'labels.txt'), 'a\nb\nc\n');
    expect(await classifier.reload()).to.deep.include({ added: [], gone: [] });
    expect(() => classifier.registry.get('cats@2')).to.throw(VisionqError).with.property('code', ErrorCode.ModelNotFound);
    expect(await classifier.classifier.classify('a.png', photo, 'cats@1', 1)).to.have.property('predictions');
  });

  it('removes a version only when told, after the work that holds it has ended', async () => {
    await addVersion('2');
    await classifier.reload();
    const held = hold(classifier, 'cats@1');
    const old = await held.model;
    await rm(join(models.dir, 'cats', '1'), { recursive: true });
    const { gone } = await classifier.reload();
    expect(gone).to.deep.equal(['cats@1']);
    // Gone from the directory, still served until removed: its queued work can finish.
    expect(classifier.registry.get('cats@1')).to.equal(old);
    let removed = false;
    const removal = classifier.registry.remove('cats@1').then(() => (removed = true));
    expect(() => classifier.registry.get('cats@1')).to.throw(VisionqError).with.property('code', ErrorCode.ModelNotFound);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(removed).to.equal(false);
    expect(old.session.alive).to.equal(true);
    held.release();
    await removal;
    expect(old.session.alive).to.equal(false);
    expect(classifier.registry.list().map((m) => m.ref)).to.deep.equal(['cats@2']);
  });
});
