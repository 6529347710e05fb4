import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { openApiPath } from '@visionq/api';
import { bearer, createKey } from '../support/api-keys';
import { Cluster } from '../support/cluster';
import { ANKLE_BOOT_PNG } from '../support/model-fixtures';
import { freePort } from '../support/moto-server';
import { OpenApiContract } from '../support/openapi-contract';

const MAX_JSON_BYTES = 4096;
const RETRY_ROUTE = 'POST /tasks/:id/retry';

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

describe('the OpenAPI document against a real gateway and worker (whole processes)', function () {
  this.timeout(180_000);
  const bucket = `vq-openapi-${randomBytes(4).toString('hex')}`;
  let dir: string;
  let cluster: Cluster;
  let contract: OpenApiContract;
  let png: Buffer;
  const key: Record<string, string> = {};
  /** `METHOD /express/path status` of every answer checked against the document. */
  const checked = new Set<string>();

  /** One request, its answer checked against the document's schema for the route, status and content type. */
  async function call(route: string, path: string, options: { key?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Reply> {
    const [method, pattern] = route.split(' ') as [string, string];
    const headers: Record<string, string> = { ...(options.key ? bearer(options.key) : {}), ...options.headers };
    let body: RequestInit['body'];
    if (options.body instanceof FormData || typeof options.body === 'string') body = options.body;
    else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${cluster.url}${path}`, { method, headers, body });
    const text = await res.text();
    contract.check(method, pattern, { status: res.status, contentType: res.headers.get('content-type'), text });
    checked.add(`${route} ${res.status}`);
    return { status: res.status, headers: res.headers, text, body: res.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(text) : text };
  }

  const upload = (field: string, bytes: Buffer, name: string, fields: Record<string, string> = {}) => {
    const form = new FormData();
    form.append(field, new Blob([bytes]), name);
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    return form;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vq-openapi-'));
    const keysFile = join(dir, 'keys.json');
    key.acme = createKey(keysFile, '--tenant', 'acme', '--webhook-secret').split('\n')[0]!;
    key.reader = createKey(keysFile, '--tenant', 'acme', '--scope', 'tasks:read');
    key.admin = createKey(keysFile, '--tenant', 'ops', '--scope', 'admin');
    key.rate = createKey(keysFile, '--tenant', 'hasty', '--rate-per-s', '1');
    png = await readFile(ANKLE_BOOT_PNG);
    // No worker until the cases that need one: a queued task stays queued, readiness is false.
    cluster = await Cluster.start({ bucket, workers: 0, env: { API_KEYS_FILE: keysFile, MAX_JSON_BYTES: String(MAX_JSON_BYTES), CALLBACK_ALLOWED_HOSTS: '127.0.0.1' } });
    await cluster.putLocal('in/boot.png', png);
    await cluster.putLocal('in/broken.png', png.subarray(0, 200));
    const served = await fetch(`${cluster.url}/openapi.json`);
    contract = new OpenApiContract((await served.json()) as Record<string, unknown>);
  });

  after(async () => {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** What the gateway logged it registers, walked from its Express router stack. */
  const registered = () => cluster.gateway.logs.find((l) => l.message === 'gateway listening')!.routes as string[];
  const inOpenApiForm = (route: string) => route.replace(/ (.*)$/, (_m, path: string) => ` ${openApiPath(path)}`);

  it('documents every route the gateway registers, with its method', () => {
    expect(registered()).to.include.members(['GET /healthz', 'POST /batch_predict', 'GET /tasks/:id/events', 'GET /openapi.json', 'GET /docs']);
    const missing = registered().filter((route) => !contract.operations().includes(inOpenApiForm(route)));
    expect(missing, 'registered but not documented').to.deep.equal([]);
  });

  it('serves /openapi.json and /docs without a key, the page loading Swagger UI from the gateway itself', async () => {
    const document = await call('GET /openapi.json', '/openapi.json');
    expect(document.body).to.deep.equal(contract.document);
    const page = await call('GET /docs', '/docs');
    expect(page.headers.get('content-type')).to.match(/^text\/html/);
    const sources = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(sources).to.have.members(['docs/assets/swagger-ui.css', 'docs/assets/swagger-ui-bundle.js']);
    for (const source of sources) {
      const asset = await fetch(new URL(source, `${cluster.url}/docs`));
      expect(asset.status, source).to.equal(200);
      expect((await asset.text()).length, source).to.be.greaterThan(1000);
    }
    expect(page.text).to.match(/url: 'openapi\.json'/);
    // Only the renderer's own files are served, not the rest of the package (its demo page would load the Petstore):
    // any other path there is an unknown one, which wants a key like every other.
    expect((await fetch(`${cluster.url}/docs/assets/index.html`)).status).to.equal(401);
  });

  it('renders every documented route in a real Chromium (Debian\'s, driven by playwright-core), loading nothing but from the gateway', async () => {
    const browser = await chromium.launch({ executablePath: execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim() });
    try {
      const page = await browser.newPage();
      const elsewhere: string[] = [];
      await page.route('**/*', (route) => (route.request().url().startsWith(cluster.url) ? route.continue() : (elsewhere.push(route.request().url()), route.abort())));
      await page.goto(`${cluster.url}/docs`);
      await page.locator('.opblock-summary-path').nth(contract.operations().length - 1).waitFor();
      const shown = await page.$$eval('.opblock-summary', (blocks) =>
        blocks.map((b) => `${b.querySelector('.opblock-summary-method')!.textContent} ${b.querySelector('.opblock-summary-path')!.getAttribute('data-path')}`),
      );
      expect(shown).to.have.members(contract.operations());
      expect(await page.locator('.errors-wrapper').allTextContents(), "Swagger UI's complaints about the document").to.deep.equal([]);
      expect(elsewhere).to.deep.equal([]);
    } finally {
      await browser.close();
    }
  });

  it('answers 401 on every route but the public ones without a key, as documented', async () => {
    for (const route of registered().filter((r) => !['GET /healthz', 'GET /openapi.json', 'GET /docs'].includes(r))) {
      const reply = await call(route, route.split(' ')[1]!.replace(':id', randomUUID()));
      expect(reply.status, route).to.equal(401);
    }
    expect((await call('GET /healthz', '/healthz')).status).to.equal(200);
  });

  it('before a worker starts: answers /readyz 503 and cancels a queued task, as documented', async () => {
    try {
      const queued = await call('POST /batch_predict', '/batch_predict', { key: key.acme, body: { images: [`s3://${bucket}/in/boot.png`] } });
      // With no worker the task stays queued: the cancel takes.
      expect((await call('DELETE /tasks/:id', `/tasks/${queued.body.task_id}`, { key: key.acme })).body.status).to.equal('cancelled');
      const notReady = await call('GET /readyz', '/readyz', { key: key.acme });
      expect([notReady.status, notReady.body.status]).to.deep.equal([503, 'not_ready']);
    } finally {
      await cluster.addWorker(); // every later case needs one
    }
  });

  it('answers /readyz, /models, and /metrics to admins only, as documented', async () => {
    expect((await call('GET /readyz', '/readyz', { key: key.acme })).status).to.equal(200);
    expect((await call('GET /models', '/models', { key: key.reader })).body.models[0].workers).to.equal(1);
    expect((await call('GET /metrics', '/metrics', { key: key.admin })).status).to.equal(200);
    expect((await call('GET /metrics', '/metrics', { key: key.acme })).status).to.equal(403);
  });

  it('answers POST /predict by URI and by upload, and its errors, as documented', async () => {
    const image = `s3://${bucket}/in/boot.png`;
    expect((await call('POST /predict', '/predict', { key: key.acme, body: { image, top_k: 2 } })).body.predictions).to.have.length(2);
    expect((await call('POST /predict', '/predict', { key: key.acme, body: upload('file', png, 'boot.png') })).status).to.equal(200);
    const expectations: Array<[number, { key?: string; body?: unknown; headers?: Record<string, string> }]> = [
      [400, { key: key.acme, body: { image, top_k: '5' } }],
      [403, { key: key.reader, body: { image } }],
      [404, { key: key.acme, body: { image: `s3://${bucket}/in/missing.png` } }],
      [413, { key: key.acme, body: { image, model: 'x'.repeat(MAX_JSON_BYTES) } }],
      [415, { key: key.acme, body: 'image=x', headers: { 'content-type': 'text/plain' } }],
      [422, { key: key.acme, body: { image: `s3://${bucket}/in/broken.png` } }],
    ];
    for (const [status, options] of expectations) {
      const reply = await call('POST /predict', '/predict', options);
      expect(reply.status, reply.text).to.equal(status);
    }
  });

  it('answers POST /batch_predict (JSON, upload, idempotent replay) and its errors as documented', async () => {
    const body = { images: [`s3://${bucket}/in/boot.png`], top_k: 1, metadata: { job: 'openapi' } };
    const idempotency = { 'idempotency-key': `openapi-${randomUUID()}` };
    const first = await call('POST /batch_predict', '/batch_predict', { key: key.acme, body, headers: idempotency });
    const replay = await call('POST /batch_predict', '/batch_predict', { key: key.acme, body, headers: idempotency });
    expect([replay.status, replay.body.task_id, replay.headers.get('idempotent-replayed')]).to.deep.equal([202, first.body.task_id, 'true']);
    expect((await call('POST /batch_predict', '/batch_predict', { key: key.acme, body: { ...body, top_k: 2 }, headers: idempotency })).status).to.equal(409);
    expect((await call('POST /batch_predict', '/batch_predict', { key: key.acme, body: upload('files', png, 'boot.png', { top_k: '1' }) })).status).to.equal(202);
    expect((await call('POST /batch_predict', '/batch_predict', { key: key.acme, body: { images: [] } })).status).to.equal(400);
    expect((await call('POST /batch_predict', '/batch_predict', { key: key.reader, body })).status).to.equal(403);
    expect((await call('POST /batch_predict', '/batch_predict', { key: key.acme, body: { ...body, model: 'no-such-model' } })).status).to.equal(404);
  });

  it('answers a task, its results as pages and as JSON Lines, its events as SSE, and their errors as documented', async () => {
    const images = [`s3://${bucket}/in/boot.png`, `s3://${bucket}/in/broken.png`, `s3://${bucket}/in/missing.png`];
    // A receiver that never answers: the view shows the callback's failed attempts.
    const callback_url = `http://127.0.0.1:${await freePort()}/hook`;
    const submit = await call('POST /batch_predict', '/batch_predict', { key: key.acme, body: { images, callback_url } });
    const id = submit.body.task_id as string;
    const ended = await cluster.waitForTask(id, 120_000, bearer(key.acme!));
    expect(ended.status).to.equal('completed_with_errors');
    const view = await call('GET /tasks/:id', `/tasks/${id}`, { key: key.reader });
    const listed = await call('GET /tasks', '/tasks?limit=1', { key: key.reader });
    expect(listed.body.tasks.map((t: { task_id: string }) => t.task_id)).to.have.length(1);
    expect(listed.body.next_cursor).to.be.a('string');
    expect((await call('GET /tasks', '/tasks?status=done', { key: key.reader })).status).to.equal(400);
    expect(view.body.results).to.have.length(3);
    const page = await call('GET /tasks/:id/results', `/tasks/${id}/results?limit=2`, { key: key.reader });
    expect(page.body.next_cursor).to.be.a('string');
    const lines = await call('GET /tasks/:id/results', `/tasks/${id}/results`, { key: key.reader, headers: { accept: 'application/x-ndjson' } });
    expect(lines.text.trim().split('\n')).to.have.length(3);
    expect((await call('GET /tasks/:id/results', `/tasks/${id}/results?limit=0`, { key: key.reader })).status).to.equal(400);
    // An ended task's events: its whole log, then the stream closes.
    const events = await call('GET /tasks/:id/events', `/tasks/${id}/events`, { key: key.reader });
    expect(events.text).to.match(/event: ended\n/);
    expect((await call('GET /tasks/:id/events', `/tasks/${id}/events`, { key: key.reader, headers: { 'last-event-id': 'nope' } })).status).to.equal(400);
    expect((await call('DELETE /tasks/:id', `/tasks/${id}`, { key: key.acme })).status).to.equal(409);
    expect((await call('DELETE /tasks/:id', `/tasks/${id}`, { key: key.reader })).status).to.equal(403);
    for (const route of ['GET /tasks/:id', 'GET /tasks/:id/results', 'GET /tasks/:id/events', 'DELETE /tasks/:id']) {
      expect((await call(route, route.split(' ')[1]!.replace(':id', randomUUID()), { key: key.acme })).status, route).to.equal(404);
    }
  });

  it(`registers every documented route, and answers ${RETRY_ROUTE} and the queue UI as documented`, async () => {
    const undocumented = contract.operations().filter((op) => !registered().map(inOpenApiForm).includes(op));
    expect(undocumented, 'documented but not registered').to.deep.equal([]);
    const submit = await call('POST /batch_predict', '/batch_predict', { key: key.acme, body: { images: [`s3://${bucket}/in/boot.png`] } });
    await cluster.waitForTask(submit.body.task_id, 120_000, bearer(key.acme!));
    expect((await call(RETRY_ROUTE, `/tasks/${submit.body.task_id}/retry`, { key: key.acme, body: {} })).status, 'nothing to retry').to.equal(409);
    expect((await call(RETRY_ROUTE, `/tasks/${randomUUID()}/retry`, { key: key.acme, body: {} })).status).to.equal(404);
    // A missing image is a failed image a retry can run again.
    const failing = await call('POST /batch_predict', '/batch_predict', { key: key.acme, body: { images: [`s3://${bucket}/in/boot.png`, `s3://${bucket}/in/absent.png`] } });
    expect((await cluster.waitForTask(failing.body.task_id, 120_000, bearer(key.acme!))).status).to.equal('completed_with_errors');
    const retried = await call(RETRY_ROUTE, `/tasks/${failing.body.task_id}/retry`, { key: key.acme, body: { failed_images: true } });
    expect([retried.status, retried.body.retries]).to.deep.equal([202, 1]);
    expect((await call(RETRY_ROUTE, `/tasks/${failing.body.task_id}/retry`, { key: key.reader })).status).to.equal(403);
    expect((await call('GET /admin/queues', '/admin/queues', { key: key.admin })).status).to.equal(200);
    expect((await call('GET /admin/queues', '/admin/queues', { key: key.acme })).status).to.equal(403);
  });

  it('answers 429 over a rate with Retry-After, as documented', async () => {
    let reply: Reply | undefined;
    // A rate of 1 per second: some request of a quick burst is refused, however fast this machine is.
    for (let i = 0; i < 50 && reply?.status !== 429; i++) reply = await call('GET /models', '/models', { key: key.rate });
    expect(reply!.status).to.equal(429);
    expect(Number(reply!.headers.get('retry-after'))).to.be.greaterThan(0);
  });

  it('checked a success of every documented route', () => {
    const succeeded = contract.operations().filter((op) => [...checked].some((c) => inOpenApiForm(c).startsWith(`${op} 2`)));
    expect(contract.operations().filter((op) => !succeeded.includes(op))).to.deep.equal([]);
  });
});
