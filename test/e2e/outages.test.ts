import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3ObjectStore } from '@visionq/object-store';
import { Cluster } from '../support/cluster';
import { FASHION_DIR } from '../support/model-fixtures';
import { createBucket, freePort, motoStore, startMotoServer, type MotoServer } from '../support/moto-server';

/** A Redis of this test's own, so it can be stopped and started again. */
async function startRedis(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'yes'], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`redis-server exited ${code}`))));
  });
  for (let i = 0; i < 100; i++) {
    if ((await redisCli(port, 'ping')) === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server on ${port} did not start`);
}

async function stopRedis(port: number): Promise<void> {
  await redisCli(port, 'shutdown', 'nosave');
}

function redisCli(port: number, ...args: string[]): Promise<number | null> {
  return new Promise((resolve) => spawn('redis-cli', ['-p', String(port), ...args], { stdio: 'ignore' }).once('exit', (code) => resolve(code)));
}

describe('outages: no worker, Redis down (whole processes)', function () {
  this.timeout(120_000);
  const bucket = `vq-outage-${randomBytes(4).toString('hex')}`;
  let moto: MotoServer;
  let store: S3ObjectStore;
  let image: string;

  before(async () => {
    moto = await startMotoServer();
    await createBucket(moto, bucket);
    store = motoStore(moto);
    image = `s3://${bucket}/boot.png`;
    await store.put(image, await readFile(join(FASHION_DIR, '0000-ankle_boot.png')));
  });

  after(async () => {
    store?.close();
    await moto?.stop();
  });

  it('accepts work with no worker running: /predict times out with its task id, and a worker arriving later finishes everything', async () => {
    const cluster = await Cluster.start({ moto, bucket, workers: 0, env: { PREDICT_TIMEOUT_MS: '1000' } });
    try {
      const ready = await cluster.request('GET', '/readyz');
      expect(ready.status).to.equal(503);
      expect(ready.body.checks.workers).to.match(/no worker/);
      const predict = await cluster.request('POST', '/predict', { image });
      expect(predict.status).to.equal(504);
      expect(predict.body.error.code).to.equal('timeout');
      expect(predict.body.status_url).to.equal(`/tasks/${predict.body.task_id}`);
      const batch = await cluster.request('POST', '/batch_predict', { images: [image, image] });
      expect(batch.status).to.equal(202);
      expect((await cluster.request('GET', `/tasks/${batch.body.task_id}`)).body.status).to.equal('queued');

      await cluster.addWorker();
      const late = await cluster.waitForTask(predict.body.task_id);
      expect(late.status).to.equal('succeeded');
      expect(late.results[0].predictions[0]).to.include({ class_id: 9 });
      expect((await cluster.waitForTask(batch.body.task_id)).progress).to.deep.equal({ total: 2, done: 2, succeeded: 2, failed: 0 });
      expect((await cluster.request('GET', '/readyz')).status).to.equal(200);
    } finally {
      await cluster.stop();
    }
  });

  it('turns readiness false on SIGTERM before it stops serving, then exits 0', async () => {
    const cluster = await Cluster.start({ moto, bucket, workers: 0, env: { GATEWAY_DRAIN_MS: '1500' } });
    try {
      cluster.gateway.child.kill('SIGTERM');
      let ready: any;
      for (let i = 0; i < 50; i++) {
        ready = await cluster.request('GET', '/readyz');
        if (ready.body.checks?.gateway !== 'ok') break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(ready.status).to.equal(503);
      expect(ready.body.checks.gateway).to.match(/draining/);
      expect((await cluster.request('GET', '/healthz')).status).to.equal(200); // still serving while it drains
      expect(await cluster.gateway.exited).to.equal(0);
    } finally {
      await cluster.stop();
    }
  });

  it('answers 503 at once while Redis is down and takes work again when it is back', async () => {
    const port = await freePort();
    await startRedis(port);
    const cluster = await Cluster.start({ moto, bucket, workers: 0, env: { REDIS_URL: `redis://127.0.0.1:${port}` } });
    try {
      expect((await cluster.request('POST', '/batch_predict', { images: [image] })).status).to.equal(202);
      await stopRedis(port);
      const refused = await cluster.request('POST', '/batch_predict', { images: [image] });
      expect(refused.status).to.equal(503);
      expect(refused.body.error.code).to.equal('unavailable');
      // Refused while Redis is still down, not held until it comes back.
      expect(await redisCli(port, 'ping')).to.not.equal(0);
      const status = await cluster.request('GET', `/tasks/${randomUUID()}`);
      expect(status.status).to.equal(503);
      expect((await cluster.request('GET', '/readyz')).status).to.equal(503);
      expect((await cluster.request('GET', '/healthz')).status).to.equal(200); // alive, just not ready

      await startRedis(port);
      let accepted = 0;
      for (let i = 0; i < 100 && accepted !== 202; i++) {
        accepted = (await cluster.request('POST', '/batch_predict', { images: [image] })).status;
        if (accepted !== 202) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(accepted).to.equal(202);
      expect(cluster.gateway.logs.some((l) => l.message === 'Redis connection error')).to.equal(true);
    } finally {
      await cluster.stop();
      await stopRedis(port);
    }
  });
});
