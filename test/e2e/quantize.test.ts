import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onnx } from 'onnx-proto';
import { visionq } from '../support/cli';
import { Cluster } from '../support/cluster';
import { BUNDLED_MODELS_DIR, FASHION_DIR } from '../support/model-fixtures';

const top1 = (line: { predictions: Array<{ class_id: number }> }) => line.predictions[0]!.class_id;

describe('visionq quantize: the bundled fashion-vgg to INT8, served (whole processes)', function () {
  this.timeout(240_000);
  const bucket = `vq-quant-${randomBytes(4).toString('hex')}`;
  let scratch: string;
  let modelsDir: string;
  let env: NodeJS.ProcessEnv;
  let fashionFiles: string[];
  let cluster: Cluster | undefined;

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'visionq-quantize-'));
    modelsDir = join(scratch, 'models');
    await cp(join(BUNDLED_MODELS_DIR, 'fashion-vgg'), join(modelsDir, 'fashion-vgg'), { recursive: true });
    // Calibration images behind s3://calib/fashion/ in a local store, the way a deployment without S3 holds them.
    const storeDir = join(scratch, 'store');
    await cp(FASHION_DIR, join(storeDir, 'calib', 'fashion'), { recursive: true });
    fashionFiles = (await readdir(FASHION_DIR)).filter((f) => f.endsWith('.png')).sort();
    env = { MODELS_DIR: modelsDir, STORE: 'local', DATA_DIR: storeDir, LOG_LEVEL: 'warn' };
  });

  after(async () => {
    await cluster?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('writes <MODELS_DIR>/fashion-vgg-int8 from images under an s3:// prefix and reports agreement and speed', async () => {
    const run = await visionq(['quantize', join(modelsDir, 'fashion-vgg'), '--calibration', 's3://calib/fashion/', '--json'], env);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stderr).to.contain('calibrating on 160, holding back 40');
    const summary = JSON.parse(run.stdout);
    expect(summary).to.deep.include({ model: 'fashion-vgg', name: 'fashion-vgg-int8', out: join(modelsDir, 'fashion-vgg-int8'), calibration_images: 160, held_back_images: 40, skipped_images: 0 });
    // Measured: 40 of 40 agree, cosine 0.99997.
    expect(summary.top1_agreement.total).to.equal(40);
    expect(summary.top1_agreement.rate).to.be.at.least(0.95);
    expect(summary.top5_agreement.rate).to.equal(1);
    expect(summary.mean_logit_cosine).to.be.above(0.999);
    expect(summary.speed.fp32_images_per_s).to.be.above(0);
    expect(summary.speed.ratio).to.equal(summary.speed.int8_images_per_s / summary.speed.fp32_images_per_s);
    expect(summary.bytes.int8).to.be.below(summary.bytes.fp32 / 2);

    const dir = join(modelsDir, 'fashion-vgg-int8');
    expect((await readdir(dir)).sort()).to.deep.equal(['labels.txt', 'manifest.json', 'model.onnx']);
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
    const original = JSON.parse(await readFile(join(BUNDLED_MODELS_DIR, 'fashion-vgg', 'manifest.json'), 'utf8'));
    expect(manifest).to.deep.equal({ ...original, name: 'fashion-vgg-int8', description: manifest.description });
    const weights = onnx.ModelProto.decode(await readFile(join(dir, 'model.onnx'))).graph!.initializer!.filter((t) => t.dataType === onnx.TensorProto.DataType.INT8 && t.dims!.length > 1);
    expect(weights, 'the four conv and two Gemm weights').to.have.length(6);
  });

  it('refuses to overwrite the folder without --force, with the error as JSON', async () => {
    const run = await visionq(['quantize', join(modelsDir, 'fashion-vgg'), '--calibration', FASHION_DIR, '--json'], env);
    expect(run.code).to.equal(1);
    expect(JSON.parse(run.stdout).error).to.include({ code: 'conflict' });
  });

  it('refuses a model with an op it cannot quantize, naming it, and writes nothing', async () => {
    const broken = join(scratch, 'broken', 'fashion-vgg');
    await cp(join(BUNDLED_MODELS_DIR, 'fashion-vgg'), broken, { recursive: true });
    const model = onnx.ModelProto.decode(await readFile(join(broken, 'model.onnx')));
    model.graph!.node!.find((n) => n.opType === 'Flatten')!.opType = 'LSTM';
    await writeFile(join(broken, 'model.onnx'), onnx.ModelProto.encode(model).finish());
    const out = join(scratch, 'broken-int8');
    const run = await visionq(['quantize', broken, '--calibration', FASHION_DIR, '--out', out], env);
    expect(run.code).to.equal(1);
    expect(run.stderr).to.contain('cannot quantize node "/classifier/classifier.0/Flatten" (op LSTM)');
    expect(run.stderr, 'refused before reading images').to.not.contain('calibration:');
    expect(await stat(out).catch(() => null)).to.equal(null);
  });

  it('serves the INT8 model through the gateway, agreeing with fp32 on every image', async () => {
    cluster = await Cluster.start({ bucket, workers: 1, env: { MODELS_DIR: modelsDir } });
    const models = await cluster.request('GET', '/models');
    expect(models.body.models.map((m: { name: string }) => m.name)).to.include.members(['fashion-vgg', 'fashion-vgg-int8']);
    const images = await Promise.all(fashionFiles.slice(0, 60).map(async (f) => cluster!.putLocal(`fashion/${f}`, await readFile(join(FASHION_DIR, f)))));
    const lines: Record<string, any[]> = {};
    for (const model of ['fashion-vgg-int8', 'fashion-vgg']) {
      const submit = await cluster.request('POST', '/batch_predict', { images, model, top_k: 3 });
      expect(submit.status, JSON.stringify(submit.body)).to.equal(202);
      const task = await cluster.waitForTask(submit.body.task_id);
      expect(task.status).to.equal('succeeded');
      expect(task.model).to.equal(model);
      expect(task.progress).to.deep.equal({ total: 60, done: 60, succeeded: 60, failed: 0 });
      lines[model] = (await cluster.allResults(submit.body.task_id)).sort((a, b) => a.image.localeCompare(b.image));
    }
    const [int8, fp32] = [lines['fashion-vgg-int8']!, lines['fashion-vgg']!];
    expect(int8.map((l) => l.image)).to.deep.equal([...images].sort());
    for (const line of int8) expect(line.predictions, line.image).to.have.length(3);
    const agree = int8.filter((line, i) => top1(line) === top1(fp32[i]!)).length;
    expect(agree / 60).to.be.at.least(0.95);
  });
});
