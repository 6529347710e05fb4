import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Cluster } from '../support/cluster';
import { FASHION_DIR } from '../support/model-fixtures';

const IMAGES = 14;
const TOP_K = 3;

/** What the simulated device's logits (-c for class c) give after softmax: class c's probability. */
function simulatedProbability(c: number, classes: number): number {
  let sum = 0;
  for (let j = 0; j < classes; j++) sum += Math.exp(-j);
  return Math.exp(-c) / sum;
}

describe('the bench-only simulated device, through a gateway and two worker processes', function () {
  this.timeout(120_000);
  let cluster: Cluster;

  before(async () => {
    cluster = await Cluster.start({
      bucket: `vq-sim-${randomBytes(4).toString('hex')}`,
      workers: 2,
      // Small chunks, so both workers share the task and the batcher forms several batches.
      env: { VISIONQ_BENCH_SIMULATED_DEVICE: '5+0.5', CHUNK_SIZE: '3', MAX_BATCH_SIZE: '4' },
    });
  });

  after(async () => {
    await cluster?.stop();
  });

  it('serves every image exactly once with the simulated logits, and says it is simulated', async () => {
    // Real images the bundled model would call trousers, sneakers, bags…: none of them
    // comes out as the simulated device's class 0 at its probability unless the device ran.
    const files = (await readdir(FASHION_DIR)).filter((f) => f.endsWith('.png') && !f.includes('t_shirt')).sort();
    const images: string[] = [];
    for (let i = 0; i < IMAGES; i++) {
      const file = files[i % files.length]!;
      images.push(await cluster.putLocal(`sim/${String(i).padStart(2, '0')}-${file}`, await readFile(join(FASHION_DIR, file))));
    }
    const missing = `s3://${cluster.bucket}/sim/missing.png`;
    const submitted = await cluster.request('POST', '/batch_predict', { images: [...images, missing], top_k: TOP_K });
    expect(submitted.status, JSON.stringify(submitted.body)).to.equal(202);

    const task = await cluster.waitForTask(submitted.body.task_id);
    expect(task.status).to.equal('completed_with_errors');
    expect(task.progress).to.deep.equal({ total: IMAGES + 1, done: IMAGES + 1, succeeded: IMAGES, failed: 1 });

    const results = await cluster.allResults(submitted.body.task_id);
    expect(results.map((r) => r.image)).to.deep.equal([...images, missing]);
    expect(results.at(-1).error.code).to.equal('image_not_found');
    const labels = (await readFile(join(__dirname, '..', '..', 'models', 'fashion-vgg', 'labels.txt'), 'utf8')).trim().split('\n');
    for (const result of results.slice(0, IMAGES)) {
      expect(result.predictions.map((p: { class_id: number }) => p.class_id), result.image).to.deep.equal([0, 1, 2]);
      result.predictions.forEach((p: { class_id: number; label: string; probability: number }) => {
        expect(p.label).to.equal(labels[p.class_id]);
        expect(p.probability).to.be.closeTo(simulatedProbability(p.class_id, labels.length), 1e-6);
      });
    }

    // Both workers loaded the model on the simulated device and warned that it is one; every chunk ran once.
    for (const worker of cluster.workers) {
      expect(Cluster.lines(worker, 'model loaded').map((l) => l.provider)).to.deep.equal(['simulated']);
      expect(worker.logs.some((l) => l.level === 'warn' && String(l.message).startsWith('serving on a simulated device'))).to.equal(true);
    }
    const chunks = cluster.workers.map((w) => Cluster.lines(w, 'chunk done').filter((l) => l.task_id === submitted.body.task_id).length);
    expect(chunks.reduce((a, b) => a + b)).to.equal(Math.ceil((IMAGES + 1) / 3));
  });
});
