import { expect } from 'chai';
import { cp, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { chunkQueueName } from '@visionq/tasks';
import { Cluster } from '../support/cluster';
import { until } from '../support/promises';
import { BUNDLED_MODELS_DIR, FASHION_DIR, tempModelsDir } from '../support/model-fixtures';

/** Copies the bundled model in as `<models>/fashion-vgg/<version>/`, staged under a dot-name and renamed in whole. */
async function addVersion(modelsDir: string, version: string): Promise<string> {
  const dir = join(modelsDir, 'fashion-vgg', version);
  const staged = join(modelsDir, 'fashion-vgg', `.${version}.partial`);
  await mkdir(join(modelsDir, 'fashion-vgg'), { recursive: true });
  await cp(join(BUNDLED_MODELS_DIR, 'fashion-vgg'), staged, { recursive: true });
  const manifest = JSON.parse(await readFile(join(staged, 'manifest.json'), 'utf8'));
  await writeFile(join(staged, 'manifest.json'), JSON.stringify({ ...manifest, version }));
  await rename(staged, dir);
  return dir;
}

const served = async (cluster: Cluster) => (await cluster.request('GET', '/models')).body.models as Array<{ ref: string; workers: number; default_version: boolean }>;

describe('model versions: added and removed while a task runs, without a restart (gateway + worker)', function () {
  this.timeout(300_000);
  let cluster: Cluster;
  let models: { dir: string; cleanup: () => Promise<void> };
  const images: string[] = [];

  before(async () => {
    models = await tempModelsDir();
    await addVersion(models.dir, '1');
    cluster = await Cluster.start({ bucket: `vq-versions-${randomUUID().slice(0, 8)}`, workers: 1, env: { MODELS_DIR: models.dir, MODELS_RELOAD_DEBOUNCE_MS: '300', CHUNK_SIZE: '20' } });
    const files = (await readdir(FASHION_DIR)).filter((f) => f.endsWith('.png'));
    for (let copy = 0; copy < 5; copy++) {
      for (const file of files) images.push(await cluster.putLocal(`photos/${copy}/${file}`, await readFile(join(FASHION_DIR, file))));
    }
  });
  after(async () => {
    await cluster?.stop();
    await models?.cleanup();
  });

  it('finishes a task on the version it was submitted to, every image once, while the next version takes over', async () => {
    expect((await served(cluster)).map((m) => m.ref)).to.deep.equal(['fashion-vgg@1']);
    // Version 1's chunks wait, paused, until its folder is gone: the whole task then runs on a removed version, whatever the machine's speed.
    const chunks = new Queue(chunkQueueName('fashion-vgg@1'), { connection: { host: '127.0.0.1', port: 6379 }, prefix: cluster.prefix });
    await chunks.pause();
    const submitted = await cluster.request('POST', '/batch_predict', { images, model: 'fashion-vgg' });
    expect(submitted.status).to.equal(202);
    const taskId = submitted.body.task_id;
    expect((await cluster.request('GET', `/tasks/${taskId}`)).body).to.deep.include({ model: 'fashion-vgg', model_version: '1' });

    // While it runs: version 2 arrives, version 1's folder goes.
    await addVersion(models.dir, '2');
    await rm(join(models.dir, 'fashion-vgg', '1'), { recursive: true });
    const worker = cluster.workers[0]!;
    await until('the worker retires version 1', async () => (Cluster.lines(worker, 'model version removed: taking its queued work, then releasing it').length > 0 ? true : undefined));
    const removedAt = worker.logs.findIndex((l) => l.message === 'model version removed: taking its queued work, then releasing it');
    expect(worker.logs[removedAt]).to.include({ model: 'fashion-vgg', version: '1' });
    expect((await cluster.request('GET', `/tasks/${taskId}`)).body.progress.done).to.equal(0);
    await chunks.resume();
    await chunks.close();

    // The gateway serves version 2 at once, refuses version 1 by name, and the worker announces version 2.
    const now = await until('GET /models lists only version 2, served by the worker', async () => {
      const list = await served(cluster);
      return list.length === 1 && list[0]!.ref === 'fashion-vgg@2' && list[0]!.workers === 1 ? list : undefined;
    });
    expect(now[0]).to.include({ default_version: true });
    // The removed version's backlog stays reported while its work drains, so an autoscaler keeps its workers.
    expect((await cluster.request('GET', '/metrics')).body).to.match(/^visionq_queue_backlog\{model="fashion-vgg",version="1",service="gateway"\} \d+$/m);
    const gone = await cluster.request('POST', '/batch_predict', { images: images.slice(0, 2), model: 'fashion-vgg@1' });
    expect(gone.status).to.equal(404);
    expect(gone.body.error.code).to.equal('model_not_found');
    const next = await cluster.request('POST', '/batch_predict', { images: images.slice(0, 40), model: 'fashion-vgg' });
    expect(next.status).to.equal(202);

    const first = await cluster.waitForTask(taskId, 240_000);
    expect(first).to.deep.include({ status: 'succeeded', model: 'fashion-vgg', model_version: '1' });
    expect(first.progress).to.deep.equal({ total: images.length, done: images.length, succeeded: images.length, failed: 0 });
    const lines = await cluster.allResults(taskId);
    expect(lines).to.have.length(images.length);
    expect(new Set(lines.map((l) => l.image))).to.deep.equal(new Set(images));
    expect(lines.every((l) => l.model === 'fashion-vgg' && l.model_version === '1' && l.predictions.length > 0)).to.equal(true);
    // Version 1 was drained, not dropped: every chunk of the task ran after its folder went.
    const chunkLines = worker.logs.map((l, i) => ({ l, i })).filter(({ l }) => l.message === 'chunk done' && l.task_id === taskId);
    expect(chunkLines).to.have.length(images.length / 20);
    expect(chunkLines.every(({ i }) => i > removedAt)).to.equal(true);
    await until('version 1 is released', async () => (Cluster.lines(worker, 'model version released').some((l) => l.version === '1') ? true : undefined));
    await cluster.request('GET', '/metrics'); // reads its backlog empty: then it is dropped
    await new Promise(setImmediate);
    expect((await cluster.request('GET', '/metrics')).body).to.not.match(/^visionq_queue_backlog\{model="fashion-vgg",version="1"/m);

    const second = await cluster.waitForTask(next.body.task_id, 120_000);
    expect(second).to.deep.include({ status: 'succeeded', model_version: '2' });
    expect((await cluster.allResults(next.body.task_id)).every((l) => l.model_version === '2')).to.equal(true);
    expect(Cluster.lines(cluster.gateway, 'model version added').map((l) => l.version)).to.deep.equal(['2']);
    expect(Cluster.lines(cluster.gateway, 'model version removed').map((l) => l.version)).to.deep.equal(['1']);
  });

  it('refuses a broken version folder with a log line, serving on', async () => {
    const broken = join(models.dir, 'fashion-vgg', '3');
    await mkdir(broken);
    await cp(join(BUNDLED_MODELS_DIR, 'fashion-vgg', 'model.onnx'), join(broken, 'model.onnx'));
    await writeFile(join(broken, 'manifest.json'), JSON.stringify({ name: 'fashion-vgg', input: { name: 'input' } }));
    for (const service of [cluster.gateway, cluster.workers[0]!]) {
      const refused = await until(`${service.name} refuses version 3`, async () => Cluster.lines(service, 'model folder refused; what was served from it stays').find((l) => l.dir === broken));
      expect(refused.error).to.match(/manifest\.json: .*input\.height/);
    }
    expect((await served(cluster)).map((m) => m.ref)).to.deep.equal(['fashion-vgg@2']);
    const predicted = await cluster.request('POST', '/predict', { image: images[0] });
    expect(predicted.status).to.equal(200);
    expect(predicted.body.model).to.deep.equal({ name: 'fashion-vgg', version: '2' });

    // A worker started now (a restart, a scale-up) refuses the folder the same way and serves the rest.
    const late = await cluster.addWorker();
    expect(Cluster.lines(late, 'model folder refused; what was served from it stays').map((l) => l.dir)).to.deep.equal([broken]);
    expect(Cluster.lines(late, 'worker ready')[0]!.models).to.deep.equal(['fashion-vgg@2']);
    await until('both workers serve version 2', async () => ((await served(cluster))[0]!.workers === 2 ? true : undefined));
  });
});

describe('model versions: SIGHUP reloads when watching is off', function () {
  this.timeout(120_000);
  let cluster: Cluster;
  let models: { dir: string; cleanup: () => Promise<void> };

  before(async () => {
    models = await tempModelsDir();
    await addVersion(models.dir, '1');
    cluster = await Cluster.start({ bucket: `vq-sighup-${randomUUID().slice(0, 8)}`, workers: 1, env: { MODELS_DIR: models.dir, MODELS_WATCH: 'false' } });
  });
  after(async () => {
    await cluster?.stop();
    await models?.cleanup();
  });

  it('loads a version added to the folder only on SIGHUP, in the gateway and the worker', async () => {
    await addVersion(models.dir, '2');
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await served(cluster)).map((m) => m.ref)).to.deep.equal(['fashion-vgg@1']);
    cluster.gateway.child.kill('SIGHUP');
    cluster.workers[0]!.child.kill('SIGHUP');
    await until('version 2 served by the worker', async () => {
      const list = await served(cluster);
      return list.find((m) => m.ref === 'fashion-vgg@2' && m.workers === 1);
    });
    const image = await cluster.putLocal('one.png', await readFile(join(FASHION_DIR, '0000-ankle_boot.png')));
    const predicted = await cluster.request('POST', '/predict', { image, model: 'fashion-vgg@1' });
    expect(predicted.body.model).to.deep.equal({ name: 'fashion-vgg', version: '1' });
    const newest = await cluster.request('POST', '/predict', { image });
    expect(newest.body.model).to.deep.equal({ name: 'fashion-vgg', version: '2' });
    expect(newest.body.predictions[0].label).to.equal('Ankle boot');
  });
});
