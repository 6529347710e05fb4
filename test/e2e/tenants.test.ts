import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bearer, createKey } from '../support/api-keys';
import { Cluster } from '../support/cluster';
import { ANKLE_BOOT_PNG, BUNDLED_MODELS_DIR, REPO_ROOT } from '../support/model-fixtures';


describe('API keys and tenants (whole processes, two gateways)', function () {
  this.timeout(120_000);
  const bucket = `vq-tenants-${randomBytes(4).toString('hex')}`;
  let dir: string;
  let keysFile: string;
  let cluster: Cluster;
  let second: string;
  const key: Record<string, string> = {};
  let png: Buffer;
  const image = () => `s3://${bucket}/in/boot.png`;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vq-tenants-'));
    keysFile = join(dir, 'keys.json');
    key.acme = createKey(keysFile, '--tenant', 'acme', '--id', 'acme-1');
    key.globex = createKey(keysFile, '--tenant', 'globex');
    key.acmeReader = createKey(keysFile, '--tenant', 'acme', '--scope', 'tasks:read');
    key.acmePredict = createKey(keysFile, '--tenant', 'acme', '--scope', 'predict');
    key.admin = createKey(keysFile, '--tenant', 'ops', '--scope', 'admin');
    key.narrow = createKey(keysFile, '--tenant', 'initech', '--bucket', `s3://${bucket}/in/`);
    png = await readFile(ANKLE_BOOT_PNG);
    cluster = await Cluster.start({ bucket, workers: 1, env: { API_KEYS_FILE: keysFile } });
    await cluster.putLocal('in/boot.png', png);
    await cluster.putLocal('elsewhere/boot.png', png);
    second = await cluster.addGateway();
  });

  after(async () => {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps the keys file hashed: no key appears in it', async () => {
    const text = await readFile(keysFile, 'utf8');
    for (const secret of Object.values(key)) expect(text).to.not.include(secret);
    expect(JSON.parse(text)[0]).to.include({ id: 'acme-1', tenant: 'acme' }).and.have.property('key_sha256').that.matches(/^[0-9a-f]{64}$/);
  });

  it('wants a valid key on every route but /healthz: 401 with WWW-Authenticate', async () => {
    expect((await cluster.request('GET', '/healthz')).status).to.equal(200);
    for (const [method, path] of [['GET', '/models'], ['GET', '/readyz'], ['GET', '/metrics'], ['POST', '/batch_predict'], ['POST', '/predict'], ['GET', `/tasks/${randomUUID()}`], ['GET', '/nowhere']]) {
      const reply = await cluster.request(method!, path!);
      expect(reply.status, `${method} ${path}`).to.equal(401);
      expect(reply.body.error.code).to.equal('unauthorized');
      expect(reply.headers.get('www-authenticate')).to.equal('Bearer realm="visionq"');
    }
    const wrong = await cluster.request('GET', '/models', undefined, bearer('vq_not-a-key'));
    expect(wrong.status).to.equal(401);
    expect(wrong.headers.get('www-authenticate')).to.equal('Bearer realm="visionq", error="invalid_token"');
    expect((await cluster.request('GET', '/models', undefined, bearer(key.acme!))).status).to.equal(200);
  });

  it('gives each route its scope: 403 forbidden without it', async () => {
    const submit = { images: [image()] };
    expect((await cluster.request('POST', '/batch_predict', submit, bearer(key.acmePredict!))).status).to.equal(403);
    expect((await cluster.request('POST', '/batch_predict', submit, bearer(key.acmeReader!))).status).to.equal(403);
    const predicted = await cluster.request('POST', '/predict', { image: image() }, bearer(key.acmePredict!));
    expect(predicted.status, JSON.stringify(predicted.body)).to.equal(200);
    expect((await cluster.request('POST', '/predict', { image: image() }, bearer(key.acmeReader!))).status).to.equal(403);
    const metrics = await cluster.request('GET', '/metrics', undefined, bearer(key.acme!));
    expect(metrics.status).to.equal(403);
    expect(metrics.body.error.message).to.match(/lacks the scope "admin"/);
    expect((await cluster.request('GET', '/metrics', undefined, bearer(key.admin!))).status).to.equal(200);
  });

  it('keeps a task, its results and its uploads its tenant\'s, on every gateway; an admin sees them all', async () => {
    const form = new FormData();
    form.append('files', new Blob([png]), 'boot.png');
    const submit = await cluster.request('POST', '/batch_predict', form, bearer(key.acme!));
    expect(submit.status, JSON.stringify(submit.body)).to.equal(202);
    const id = submit.body.task_id;
    const task = await cluster.waitForTask(id, 60_000, bearer(key.acme!));
    expect(task.output).to.equal(`s3://${bucket}/results/acme/${id}/`);
    expect(task.results[0].image).to.equal(`s3://${bucket}/uploads/acme/${id}/00000-boot.png`);
    for (const base of [cluster.url, second]) {
      for (const [method, path] of [['GET', `/tasks/${id}`], ['GET', `/tasks/${id}/results`], ['DELETE', `/tasks/${id}`]]) {
        const other = await cluster.request(method!, path!, undefined, bearer(key.globex!), base);
        expect(other.status, `${method} ${path} as globex`).to.equal(404);
        expect(other.body.error.code).to.equal('not_found');
      }
      expect((await cluster.request('GET', `/tasks/${id}`, undefined, bearer(key.acmeReader!), base)).status).to.equal(200);
      expect((await cluster.request('GET', `/tasks/${id}/results`, undefined, bearer(key.admin!), base)).body.results).to.have.length(1);
      // Listed to its own tenant only.
      const listed = (who: string) => cluster.request('GET', '/tasks?limit=100', undefined, bearer(who), base).then((r) => r.body.tasks.map((t: { task_id: string }) => t.task_id));
      expect(await listed(key.acmeReader!)).to.include(id);
      expect(await listed(key.globex!)).to.not.include(id);
    }
  });

  it('never lets a tenant read or list another tenant\'s uploads or results, nor write into them', async () => {
    const cases: Array<[string, object]> = [
      ['another tenant\'s upload', { images: [`s3://${bucket}/uploads/acme/${randomUUID()}/00000-boot.png`] }],
      ['another tenant\'s uploads', { source: `s3://${bucket}/uploads/acme/` }],
      ['every tenant\'s results', { source: `s3://${bucket}/results/` }],
      ['a prefix over everyone\'s uploads', { source: `s3://${bucket}/` }],
      ['a prefix that starts another tenant\'s folder', { source: `s3://${bucket}/uploads/acm` }],
      ['output into another tenant\'s results', { images: [image()], output: `s3://${bucket}/results/acme/` }],
    ];
    const before = await cluster.footprint();
    for (const [what, body] of cases) {
      const reply = await cluster.request('POST', '/batch_predict', body, bearer(key.globex!));
      expect(reply.status, what).to.equal(403);
      expect(reply.body.error.code, what).to.equal('forbidden');
    }
    expect(await cluster.footprint()).to.deep.equal(before);
    expect((await cluster.request('POST', '/batch_predict', { source: `s3://${bucket}/uploads/globex/` }, bearer(key.globex!))).status).to.equal(202);
  });

  it('keeps idempotency keys per tenant: the same key from two tenants makes two tasks', async () => {
    const headers = { 'idempotency-key': `shared-${randomUUID()}` };
    const a = await cluster.request('POST', '/batch_predict', { images: [image()] }, { ...headers, ...bearer(key.acme!) });
    const b = await cluster.request('POST', '/batch_predict', { images: [image()], top_k: 2 }, { ...headers, ...bearer(key.globex!) }, second);
    expect([a.status, b.status]).to.deep.equal([202, 202]);
    expect(a.body.task_id).to.not.equal(b.body.task_id);
    expect(b.headers.get('idempotent-replayed')).to.equal(null);
    const again = await cluster.request('POST', '/batch_predict', { images: [image()] }, { ...headers, ...bearer(key.acme!) }, second);
    expect(again.body.task_id).to.equal(a.body.task_id);
  });

  it('confines a key with buckets to them', async () => {
    expect((await cluster.request('POST', '/batch_predict', { images: [image()] }, bearer(key.narrow!))).status).to.equal(202);
    const outside = await cluster.request('POST', '/batch_predict', { images: [`s3://${bucket}/elsewhere/boot.png`] }, bearer(key.narrow!));
    expect(outside.status).to.equal(403);
    expect(outside.body.error.message).to.match(/outside the buckets of tenant "initech"/);
  });

  it('revokes a key removed from the file without a restart, on every gateway', async () => {
    const doomed = createKey(keysFile, '--tenant', 'acme', '--id', 'doomed');
    for (const base of [cluster.url, second]) await waitForStatus(base, doomed, 200);
    const entries = JSON.parse(await readFile(keysFile, 'utf8')).filter((e: { id: string }) => e.id !== 'doomed');
    await writeFile(keysFile, JSON.stringify(entries));
    for (const base of [cluster.url, second]) await waitForStatus(base, doomed, 401);
    expect((await cluster.request('GET', '/models', undefined, bearer(key.acme!), second)).status).to.equal(200);
  });

  /** Waits (bounded) until a key gets `status` on `GET /models` of the gateway at `base`. */
  async function waitForStatus(base: string, secret: string, status: number): Promise<void> {
    let last = 0;
    for (let i = 0; i < 100 && last !== status; i++) {
      last = (await cluster.request('GET', '/models', undefined, bearer(secret), base)).status;
      if (last !== status) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(last).to.equal(status);
  }

  it('tags a task\'s log lines, on the gateway and the worker, with the fields a log stack indexes', async () => {
    const requestId = `req-${randomBytes(6).toString('hex')}`;
    const submit = await cluster.request('POST', '/batch_predict', { images: [image(), image()] }, { ...bearer(key.acme!), 'x-request-id': requestId });
    expect(submit.headers.get('x-request-id')).to.equal(requestId);
    const id = submit.body.task_id;
    await cluster.waitForTask(id, 60_000, bearer(key.acme!));
    const queued = Cluster.lines(cluster.gateway, 'task queued').find((l) => l.task_id === id);
    expect(queued).to.include({ request_id: requestId, tenant: 'acme', model: 'fashion-vgg' });
    const access = cluster.gateway.logs.find((l) => l.message === 'request' && l.request_id === requestId);
    expect(access).to.include({ tenant: 'acme', method: 'POST', route: '/batch_predict', status: 202, level: 'info' });
    for (let i = 0; i < 100 && !Cluster.lines(cluster.workers[0]!, 'chunk done').some((l) => l.task_id === id); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    const done = Cluster.lines(cluster.workers[0]!, 'chunk done').find((l) => l.task_id === id);
    expect(done).to.include({ request_id: requestId, tenant: 'acme', chunk: 0, model: 'fashion-vgg', service: 'worker' });
  });
});

describe('safe by default: the bind address and keys (whole processes)', function () {
  this.timeout(60_000);
  const env = { ...process.env, MODELS_DIR: BUNDLED_MODELS_DIR, REDIS_PREFIX: `vq-bind-${randomBytes(4).toString('hex')}`, DATA_DIR: join(tmpdir(), `vq-bind-${randomUUID()}`) };
  const gateway = join(REPO_ROOT, 'apps', 'gateway', 'dist', 'main.js');

  it('refuses, in one line, to listen beyond loopback without keys', () => {
    const run = spawnSync(process.execPath, [gateway], { env: { ...env, HOST: '0.0.0.0' }, encoding: 'utf8', timeout: 30_000 });
    expect(run.status).to.not.equal(0);
    expect(run.stderr.trim().split('\n')).to.have.length(1);
    expect(run.stderr).to.match(/HOST=0\.0\.0\.0 is not a loopback address and no API_KEYS_FILE is set/);
  });

  it('serves without keys beyond loopback only when AUTH=none says so', async () => {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const child = spawn(process.execPath, [gateway], { env: { ...env, HOST: '0.0.0.0', PORT: String(port), AUTH: 'none' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr.setEncoding('utf8').on('data', (t: string) => (log += t));
    try {
      let status = 0;
      for (let i = 0; i < 100 && status !== 200; i++) {
        status = (await fetch(`http://127.0.0.1:${port}/models`).catch(() => null))?.status ?? 0;
        if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(status, log).to.equal(200);
      expect(log).to.match(/serving without API keys \(AUTH=none\)/);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
