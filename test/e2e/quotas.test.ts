import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bearer, createKey } from '../support/api-keys';
import { Cluster } from '../support/cluster';
import { ANKLE_BOOT_PNG } from '../support/model-fixtures';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Quotas and deadlines hold across gateway replicas: two gateways, no worker, so tasks stay
 * unfinished until cancelled or past their deadline.
 */
describe('quotas and deadlines across two gateways (whole processes)', function () {
  this.timeout(120_000);
  const bucket = `vq-quota-${randomBytes(4).toString('hex')}`;
  let dir: string;
  let cluster: Cluster;
  let second: string;
  const key: Record<string, string> = {};
  const image = () => `s3://${bucket}/in/boot.png`;
  const images = (n: number) => Array.from({ length: n }, image);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vq-quota-'));
    const keysFile = join(dir, 'keys.json');
    key.rate = createKey(keysFile, '--tenant', 'rate', '--rate-per-s', '2');
    key.daily = createKey(keysFile, '--tenant', 'daily', '--images-per-day', '3');
    key.flight = createKey(keysFile, '--tenant', 'flight', '--images-in-flight', '2');
    key.plain = createKey(keysFile, '--tenant', 'plain');
    cluster = await Cluster.start({ bucket, workers: 0, env: { API_KEYS_FILE: keysFile } });
    await cluster.putLocal('in/boot.png', await readFile(ANKLE_BOOT_PNG));
    second = await cluster.addGateway();
  });

  after(async () => {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('holds a tenant to its requests per second over both gateways: 429 with Retry-After, then success', async () => {
    const started = Date.now();
    const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => cluster.request('GET', '/models', undefined, bearer(key.rate!), i % 2 === 0 ? cluster.url : second)));
    // Two a second: the burst may straddle a window boundary, never more than that.
    const windows = Math.ceil((Date.now() - started) / 1000) + 1;
    const limited = replies.filter((r) => r.status === 429);
    expect(replies.filter((r) => r.status === 200).length, 'within the rate').to.be.within(1, 2 * windows);
    expect(limited.length + replies.filter((r) => r.status === 200).length).to.equal(10);
    expect(limited.length).to.be.at.least(10 - 2 * windows);
    expect(limited[0]!.body.error.code).to.equal('rate_limited');
    const wait = Number(limited[0]!.headers.get('retry-after'));
    expect(wait).to.be.within(1, 2);
    await sleep(wait * 1000);
    expect((await cluster.request('GET', '/models', undefined, bearer(key.rate!), second)).status).to.equal(200);
    // Another tenant is not held by it.
    expect((await cluster.request('GET', '/models', undefined, bearer(key.plain!))).status).to.equal(200);
  });

  it('holds a tenant to its images per day, whichever gateway it submits to, enqueuing nothing over it', async () => {
    expect((await cluster.request('POST', '/batch_predict', { images: images(2) }, bearer(key.daily!))).status).to.equal(202);
    const before = await cluster.footprint();
    const over = await cluster.request('POST', '/batch_predict', { images: images(2) }, bearer(key.daily!), second);
    expect(over.status).to.equal(429);
    expect(over.body.error.message).to.match(/3 images per day/);
    expect(Number(over.headers.get('retry-after'))).to.be.within(1, 86_400);
    expect(await cluster.footprint()).to.deep.equal(before);
    expect((await cluster.request('POST', '/batch_predict', { images: images(1) }, bearer(key.daily!), second)).status).to.equal(202);
  });

  it('holds a tenant to its images in flight until one of its tasks ends', async () => {
    const first = await cluster.request('POST', '/batch_predict', { images: images(2) }, bearer(key.flight!));
    expect(first.status).to.equal(202);
    const over = await cluster.request('POST', '/predict', { image: image() }, bearer(key.flight!), second);
    expect(over.status).to.equal(429);
    expect(over.body.error.message).to.match(/more than 2 images in flight/);
    expect(over.headers.get('retry-after')).to.match(/^\d+$/);
    expect((await cluster.request('DELETE', `/tasks/${first.body.task_id}`, undefined, bearer(key.flight!), second)).status).to.equal(200);
    expect((await cluster.request('POST', '/batch_predict', { images: images(2) }, bearer(key.flight!), second)).status).to.equal(202);
  });

  it('ends a task past its timeout_s as failed with timeout, and shows its deadline', async () => {
    const submit = await cluster.request('POST', '/batch_predict', { images: images(1), timeout_s: 1 }, bearer(key.plain!), second);
    expect(submit.status).to.equal(202);
    const task = await cluster.waitForTask(submit.body.task_id, 30_000, bearer(key.plain!));
    expect(task.status).to.equal('failed');
    expect(task.error.code).to.equal('timeout');
    expect(Date.parse(task.finished_at)).to.be.at.least(Date.parse(task.deadline));
    const tooLong = await cluster.request('POST', '/batch_predict', { images: images(1), timeout_s: 10 * 365 * 86_400 }, bearer(key.plain!));
    expect(tooLong.status).to.equal(400);
  });
});
