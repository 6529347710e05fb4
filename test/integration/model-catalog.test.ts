import { expect } from 'chai';
import { cp, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, ModelError, VisionqError } from '@visionq/api';
import { ModelCatalog, watchModels } from '@visionq/models';
import { editManifest, tempModelsDir, TINY_VGG, writeModel } from '../support/model-fixtures';

/** A versioned layout `<dir>/<name>/<version>/` made from one tiny VGG folder. */
async function writeVersion(modelsDir: string, source: string, name: string, version: string): Promise<string> {
  const dir = join(modelsDir, name, version);
  await mkdir(join(modelsDir, name), { recursive: true });
  await cp(source, dir, { recursive: true });
  await editManifest(dir, (m) => {
    m.name = name;
    delete m.version;
  });
  return dir;
}

describe('model catalog: versioned folders, defaults and reloads', function () {
  let models: { dir: string; cleanup: () => Promise<void> };
  let template: { dir: string; cleanup: () => Promise<void> };
  let source: string;

  before(async () => {
    template = await tempModelsDir();
    source = await writeModel(template.dir, TINY_VGG);
  });
  after(() => template.cleanup());
  beforeEach(async () => (models = await tempModelsDir()));
  afterEach(() => models.cleanup());

  it('reads NAME/VERSION folders and a flat folder as its version, naming each NAME@VERSION', async () => {
    await writeVersion(models.dir, source, 'cats', '1');
    await writeVersion(models.dir, source, 'cats', '2');
    await writeVersion(models.dir, source, 'cats', '10');
    await cp(source, join(models.dir, 'tiny-vgg'), { recursive: true });
    const catalog = await ModelCatalog.load(models.dir, 'cats');
    expect(catalog.all().map((f) => f.ref)).to.deep.equal(['cats@1', 'cats@2', 'cats@10', 'tiny-vgg@1']);
    // The newest version by number (10 after 2) unless model.json says otherwise.
    expect(catalog.resolve('cats').ref).to.equal('cats@10');
    expect(catalog.resolve(undefined).ref).to.equal('cats@10');
    expect(catalog.resolve('cats@2').dir).to.equal(join(models.dir, 'cats', '2'));
    expect(catalog.resolve('tiny-vgg').version).to.equal('1');
    for (const spec of ['cats@3', 'dogs', 'dogs@1']) {
      expect(() => catalog.resolve(spec)).to.throw(VisionqError).with.property('code', ErrorCode.ModelNotFound);
    }
    expect(() => catalog.resolve('cats@')).to.throw(VisionqError).with.property('code', ErrorCode.InvalidArgument);
    const listed = catalog.list();
    expect(listed.filter((m) => m.default).map((m) => m.ref)).to.deep.equal(['cats@10']);
    expect(listed.filter((m) => m.default_version).map((m) => m.ref)).to.deep.equal(['cats@10', 'tiny-vgg@1']);
    expect(listed[0]).to.deep.include({ name: 'cats', version: '1', ref: 'cats@1', classes: 10, input: { name: 'input', shape: ['N', 3, 224, 224] } });
  });

  it('takes the default version from model.json, and shows metrics.json without its confusion matrix', async () => {
    await writeVersion(models.dir, source, 'cats', '1');
    const two = await writeVersion(models.dir, source, 'cats', '2');
    await writeFile(join(models.dir, 'cats', 'model.json'), JSON.stringify({ default_version: '1' }));
    const metrics = { split: 'val', images: 4, accuracy: 0.75, cohen_kappa: 0.5, per_class: [{ label: 'a', precision: 1, recall: 0.5, support: 2 }], confusion_matrix: [[1, 1], [0, 2]] };
    await writeFile(join(two, 'metrics.json'), JSON.stringify(metrics));
    const catalog = await ModelCatalog.load(models.dir);
    expect(catalog.resolve('cats').ref).to.equal('cats@1');
    const { confusion_matrix: _, ...summary } = metrics;
    expect(catalog.list().find((m) => m.ref === 'cats@2')!.metrics).to.deep.equal(summary);
    expect(catalog.resolve('cats@2').metrics).to.deep.equal(metrics);
  });

  it('refuses at load a folder that fails its checks, naming it; skips folders being written (".name")', async () => {
    const one = await writeVersion(models.dir, source, 'cats', '1');
    await cp(source, join(models.dir, 'cats', '.2.partial-x'), { recursive: true });
    expect((await ModelCatalog.load(models.dir)).all().map((f) => f.ref)).to.deep.equal(['cats@1']);
    await editManifest(one, (m) => (m.version = '7'));
    await ModelCatalog.load(models.dir).then(
      () => expect.fail('loaded'),
      (err) => expect(err).to.be.instanceOf(ModelError).with.property('message').that.matches(/cats\/1: manifest.json says version "7", but the folder is version "1"/),
    );
    await editManifest(one, (m) => {
      delete m.version;
      m.name = 'dogs';
    });
    await ModelCatalog.load(models.dir).then(
      () => expect.fail('loaded'),
      (err) => expect(err.message).to.match(/names model "dogs", but the folder is a version of "cats"/),
    );
  });

  it('reloads: versions added, changed and removed; a broken folder is refused and what it served stays', async () => {
    const one = await writeVersion(models.dir, source, 'cats', '1');
    const catalog = await ModelCatalog.load(models.dir, 'cats');
    expect((await catalog.reload())).to.deep.include({ added: [], replaced: [], removed: [], refused: [] });

    // A new version is staged under a dot-name, then renamed in: the catalog sees it whole.
    await cp(source, join(models.dir, 'cats', '.2.tmp'), { recursive: true });
    await editManifest(join(models.dir, 'cats', '.2.tmp'), (m) => {
      m.name = 'cats';
      m.version = '2';
    });
    expect((await catalog.reload()).added).to.deep.equal([]);
    await rename(join(models.dir, 'cats', '.2.tmp'), join(models.dir, 'cats', '2'));
    let changes = await catalog.reload();
    expect(changes.added.map((f) => f.ref)).to.deep.equal(['cats@2']);
    expect([...changes.defaults]).to.deep.equal([['cats', '2']]);
    expect(catalog.resolve('cats').ref).to.equal('cats@2');

    // Version 1's labels change: replaced. Then its manifest breaks: refused, the version read before stays.
    await writeFile(join(one, 'labels.txt'), Array.from({ length: 10 }, (_, i) => `class ${i}`).join('\n'));
    changes = await catalog.reload();
    expect(changes.replaced.map((f) => f.ref)).to.deep.equal(['cats@1']);
    expect(catalog.resolve('cats@1').labels[0]).to.equal('class 0');
    await writeFile(join(one, 'manifest.json'), '{ not json');
    changes = await catalog.reload();
    expect(changes.refused.map((r) => r.dir)).to.deep.equal([one]);
    expect(changes.refused[0]!.error.message).to.match(/manifest.json is not valid JSON/);
    expect(changes).to.deep.include({ added: [], replaced: [], removed: [] });
    expect(catalog.resolve('cats@1').labels[0]).to.equal('class 0');

    // A default naming a missing version is refused; the newest serves.
    await writeFile(join(models.dir, 'cats', 'model.json'), JSON.stringify({ default_version: '9' }));
    changes = await catalog.reload();
    expect(changes.refused.map((r) => r.error.message).join('\n')).to.match(/default_version "9" is not a version of "cats"/);
    expect(catalog.resolve('cats').ref).to.equal('cats@2');

    await rm(join(models.dir, 'cats', '2'), { recursive: true });
    changes = await catalog.reload();
    expect(changes.removed.map((f) => f.ref)).to.deep.equal(['cats@2']);
    expect(() => catalog.resolve('cats@2')).to.throw(VisionqError).with.property('code', ErrorCode.ModelNotFound);
  });

  /** A reload that takes 50 ms, counting its runs and whether two ever overlapped. */
  function countingReload(): { apply: () => Promise<void>; runs: () => number; overlapped: () => boolean } {
    let running = 0;
    let runs = 0;
    let overlapped = false;
    return {
      apply: async () => {
        overlapped ||= running > 0;
        running++;
        await new Promise((resolve) => setTimeout(resolve, 50));
        runs++;
        running--;
      },
      runs: () => runs,
      overlapped: () => overlapped,
    };
  }

  it('watches the directory: a change reloads once it settles', async () => {
    await writeVersion(models.dir, source, 'cats', '1');
    const counter = countingReload();
    const watch = watchModels(models.dir, counter.apply, { watch: true, debounceMs: 200, onError: (err) => expect.fail(err.message) });
    try {
      await writeVersion(models.dir, source, 'cats', '2');
      const deadline = Date.now() + 20_000;
      while (counter.runs() === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(counter.runs()).to.be.at.least(1);
      expect(counter.overlapped()).to.equal(false);
    } finally {
      watch.close();
    }
  });

  it('reloads on demand (SIGHUP), never two at once: calls during a reload share the one after it', async () => {
    const counter = countingReload();
    const watch = watchModels(models.dir, counter.apply, { watch: false, debounceMs: 200, onError: (err) => expect.fail(err.message) });
    try {
      await Promise.all([watch.reload(), watch.reload(), watch.reload()]);
      expect(counter.runs()).to.equal(2);
      expect(counter.overlapped()).to.equal(false);
    } finally {
      watch.close();
    }
  });
});
