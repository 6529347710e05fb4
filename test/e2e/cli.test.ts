import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FASHION_DIR, PHOTOS_DIR, REPO_ROOT, tempModelsDir, writeModel } from '../support/model-fixtures';

const CLI = join(REPO_ROOT, 'apps', 'cli', 'bin', 'visionq.js');

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

async function visionq(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('visionq CLI (whole process)', function () {
  this.timeout(120_000);
  let models: { dir: string; cleanup: () => Promise<void> };
  before(async () => {
    models = await tempModelsDir();
    await writeModel(models.dir);
  });
  after(async () => {
    await models.cleanup();
  });

  it('classifies a real photo with the bundled default model', async () => {
    const run = await visionq(['predict', join(FASHION_DIR, '0000-ankle_boot.png')]);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.contain('model: fashion-vgg');
    const firstRow = run.stdout.split('\n')[2]!;
    expect(firstRow).to.contain('0000-ankle_boot.png').and.contain('Ankle boot');
  });

  it('prints one JSON line per image, good and bad mixed, in input order', async () => {
    const textAsJpeg = join(models.dir, 'notes.jpg');
    await writeFile(textAsJpeg, 'this is text, not a JPEG\n');
    const files = [join(PHOTOS_DIR, 'chelsea.png'), textAsJpeg, join(models.dir, 'missing.png'), join(PHOTOS_DIR, 'rocket.jpg')];
    const run = await visionq(['predict', '--json', '--top-k', '3', '--model', 'tiny-vgg', '--models-dir', models.dir, ...files]);
    expect(run.code, run.stderr).to.equal(1);
    const lines = run.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.image)).to.deep.equal(files);
    for (const good of [lines[0], lines[3]]) {
      expect(good.predictions).to.have.length(3);
      expect(Object.keys(good.predictions[0])).to.deep.equal(['class_id', 'label', 'probability']);
      const sum = good.predictions.reduce((s: number, p: { probability: number }) => s + p.probability, 0);
      expect(sum).to.be.greaterThan(0).and.at.most(1.000001);
    }
    expect(lines[1].error.code).to.equal('image_decode_failed');
    expect(lines[2].error.code).to.equal('image_not_found');
  });

  it('lists the models it can serve', async () => {
    const run = await visionq(['models', '--json', '--models-dir', models.dir]);
    expect(run.code, run.stderr).to.equal(0);
    const { models: listed } = JSON.parse(run.stdout);
    expect(listed).to.have.length(1);
    expect(listed[0]).to.deep.include({ name: 'tiny-vgg', classes: 10, provider: 'cpu' });
  });

  it('names the bad variable and exits non-zero on a bad configuration', async () => {
    const run = await visionq(['predict', join(PHOTOS_DIR, 'chelsea.png')], { MAX_BATCH_SIZE: 'zero' });
    expect(run.code).to.equal(1);
    expect(run.stderr).to.contain('MAX_BATCH_SIZE');
    expect(run.stdout).to.equal('');
  });

  it('names the known models when asked for an unknown one', async () => {
    const run = await visionq(['predict', '--model', 'resnet', '--models-dir', models.dir, join(PHOTOS_DIR, 'chelsea.png')]);
    expect(run.code).to.equal(1);
    expect(run.stderr).to.contain('resnet').and.contain('tiny-vgg');
  });
});
