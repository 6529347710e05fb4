import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bearer, createKey } from '../support/api-keys';
import { Cluster } from '../support/cluster';
import { ANKLE_BOOT_PNG } from '../support/model-fixtures';

describe('queue UI at /admin/queues (whole processes)', function () {
  this.timeout(120_000);
  const bucket = `vq-admin-${randomBytes(4).toString('hex')}`;
  let cluster: Cluster;
  let dir: string;
  const key: Record<string, string> = {};

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vq-admin-keys-'));
    const keysFile = join(dir, 'keys.json');
    key.admin = createKey(keysFile, '--tenant', 'ops', '--scope', 'admin');
    key.acme = createKey(keysFile, '--tenant', 'acme');
    cluster = await Cluster.start({ bucket, workers: 1, env: { API_KEYS_FILE: keysFile } });
    await cluster.putLocal('in/boot.png', await readFile(ANKLE_BOOT_PNG));
  });

  after(async () => {
    await cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('asks a browser for the key, refuses keys without the admin scope, and serves the board to admins (Bearer or Basic)', async () => {
    const anonymous = await cluster.request('GET', '/admin/queues');
    expect(anonymous.status).to.equal(401);
    expect(anonymous.headers.get('www-authenticate')).to.match(/^Basic realm="visionq admin"/);
    expect(anonymous.body.error.code).to.equal('unauthorized');
    const tenant = await cluster.request('GET', '/admin/queues', undefined, bearer(key.acme!));
    expect([tenant.status, tenant.body.error.code]).to.deep.equal([403, 'forbidden']);
    for (const authorization of [`Bearer ${key.admin}`, `Basic ${Buffer.from(`anyone:${key.admin}`).toString('base64')}`]) {
      const page = await fetch(`${cluster.url}/admin/queues`, { headers: { authorization } });
      expect(page.status, authorization.split(' ')[0]).to.equal(200);
      expect(page.headers.get('content-type')).to.match(/^text\/html/);
      const html = await page.text();
      expect(html).to.match(/<base href="\/admin\/queues\/"/);
      // Its scripts come from the gateway itself, behind the same key.
      const script = /src="(static\/js\/main\.[^"]+\.js)"/.exec(html)![1];
      const js = await fetch(`${cluster.url}/admin/queues/${script}`, { headers: { authorization } });
      expect(js.status).to.equal(200);
      expect(js.headers.get('content-type')).to.match(/^text\/javascript/);
      expect((await fetch(`${cluster.url}/admin/queues/${script}`)).status).to.equal(401);
    }
    const wrongBasic = await fetch(`${cluster.url}/admin/queues`, { headers: { authorization: `Basic ${Buffer.from('admin:vq_wrong').toString('base64')}` } });
    expect(wrongBasic.status).to.equal(401);
  });

  it('shows every model\'s queues and the callbacks\', with the jobs of a task that ran', async () => {
    const submit = await cluster.request('POST', '/batch_predict', { images: [`s3://${bucket}/in/boot.png`] }, bearer(key.acme!));
    expect(submit.status).to.equal(202);
    await cluster.waitForTask(submit.body.task_id, 60_000, bearer(key.acme!));
    const reply = await cluster.request('GET', '/admin/queues/api/queues?activeQueue=chunks-fashion-vgg@1&status=completed&page=1', undefined, bearer(key.admin!));
    expect(reply.status).to.equal(200);
    const queues = reply.body.queues as Array<{ name: string; counts: Record<string, number>; jobs: Array<{ id: string }> }>;
    expect(queues.map((q) => q.name).sort()).to.deep.equal(['callbacks', 'chunks-fashion-vgg@1', 'predict-fashion-vgg@1']);
    const chunks = queues.find((q) => q.name === 'chunks-fashion-vgg@1')!;
    expect(chunks.counts.completed).to.be.at.least(1);
    expect(chunks.jobs.map((j) => j.id)).to.include(`${submit.body.task_id}-c0`);
    const api = await cluster.request('GET', '/admin/queues/api/queues', undefined, bearer(key.acme!));
    expect(api.status).to.equal(403);
  });
});
