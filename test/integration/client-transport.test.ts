import { expect } from 'chai';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { VisionqClient, VisionqClientError } from '@visionq/client';
import { freePort } from '../support/moto-server';

const TASK = '7741d430-1875-4ff9-9072-f0b2e6856547';

function view(status: string, done: number) {
  return { task_id: TASK, status, model: 'fashion-vgg', progress: { total: 2, done, succeeded: done, failed: 0 }, retries: 0, created_at: '2026-12-02T00:00:00.000Z', started_at: null, finished_at: null, results_url: `/tasks/${TASK}/results`, output: 's3://b/results/' };
}

/**
 * The client alone against a scripted gateway on loopback: what a real one does only under
 * faults (503, a dropped events stream, no events route) answered on cue.
 */
describe('@visionq/client transport (a scripted server on loopback)', () => {
  let server: Server;
  let url: string;
  let handler: (req: IncomingMessage, res: ServerResponse, n: number) => void;
  let requests: IncomingMessage[];

  beforeEach(async () => {
    requests = [];
    server = createServer((req, res) => {
      requests.push(req);
      handler(req, res, requests.length);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    server.closeAllConnections();
    server.close();
  });

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
  const unavailable = { error: { code: 'unavailable', message: 'redis does not answer', details: [] } };

  it('sends a submit again after 503s, under the one Idempotency-Key it generated', async () => {
    handler = (_req, res, n) => (n < 3 ? json(res, 503, unavailable) : json(res, 202, { task_id: TASK, status: 'queued', status_url: `/tasks/${TASK}` }));
    const client = new VisionqClient({ url, retry: { backoffMs: 1 } });
    const accepted = await client.submit({ images: ['s3://b/k.png'] });
    expect(accepted.task_id).to.equal(TASK);
    expect(requests).to.have.length(3);
    const keys = new Set(requests.map((r) => r.headers['idempotency-key']));
    expect(keys.size).to.equal(1);
    expect([...keys][0]).to.match(/^[0-9a-f-]{36}$/);
  });

  it('gives up after maxAttempts with the last answer as a typed error', async () => {
    handler = (_req, res) => json(res, 503, unavailable);
    const client = new VisionqClient({ url, retry: { backoffMs: 1, maxAttempts: 3 } });
    const err = await client.get(TASK).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(VisionqClientError);
    expect(err).to.include({ status: 503, code: 'unavailable', message: 'redis does not answer' });
    expect(requests).to.have.length(3);
  });

  it('waits as long as Retry-After asks, and not at all when it asks for more than maxBackoffMs', async () => {
    const seen: number[] = [];
    handler = (_req, res, n) => {
      seen.push(Date.now());
      if (n === 1) json(res, 503, unavailable, { 'retry-after': '1' });
      else json(res, 200, view('running', 1));
    };
    expect((await new VisionqClient({ url, retry: { backoffMs: 1 } }).get(TASK)).status).to.equal('running');
    expect(seen[1]! - seen[0]!, 'the gap Retry-After asked for').to.be.at.least(1000);

    handler = (_req, res) => json(res, 503, unavailable, { 'retry-after': '3600' });
    requests = [];
    const err = await new VisionqClient({ url }).get(TASK).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(VisionqClientError).and.include({ status: 503 });
    expect(requests).to.have.length(1);
  });

  it('stops backing off when its signal aborts', async () => {
    handler = (_req, res) => json(res, 503, unavailable);
    const controller = new AbortController();
    const pending = new VisionqClient({ url, retry: { backoffMs: 60_000, maxBackoffMs: 60_000 } }).get(TASK, controller.signal).catch((e: unknown) => e);
    while (requests.length === 0) await new Promise((resolve) => setImmediate(resolve));
    controller.abort(new Error('user gave up'));
    expect(((await pending) as Error).message).to.equal('user gave up');
    expect(requests).to.have.length(1);
  });

  it('resumes a dropped events stream with Last-Event-ID', async () => {
    handler = (_req, res, n) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (n === 1) {
        res.write(`id: 1-0\nevent: progress\ndata: ${JSON.stringify(view('running', 1))}\n\n`, () => res.destroy());
      } else {
        res.end(`id: 2-0\nevent: ended\ndata: ${JSON.stringify(view('succeeded', 2))}\n\n`);
      }
    };
    const seen: string[] = [];
    const final = await new VisionqClient({ url, retry: { backoffMs: 1 } }).wait(TASK, { onProgress: (v) => seen.push(`${v.status} ${v.progress.done}`) });
    expect(final.status).to.equal('succeeded');
    expect(seen).to.deep.equal(['running 1', 'succeeded 2']);
    expect(requests.map((r) => r.headers['last-event-id'])).to.deep.equal([undefined, '1-0']);
  });

  it('polls GET /tasks/:id when the events stream is unavailable', async () => {
    handler = (req, res, n) => {
      if (req.url!.endsWith('/events')) res.writeHead(502, { 'content-type': 'text/html' }).end('<h1>Bad Gateway</h1>');
      else json(res, 200, n < 4 ? view('running', 1) : view('succeeded', 2));
    };
    const seen: string[] = [];
    const final = await new VisionqClient({ url, pollIntervalMs: 1 }).wait(TASK, { onProgress: (v) => seen.push(v.status) });
    expect(final.status).to.equal('succeeded');
    expect(seen).to.deep.equal(['running', 'succeeded']);
    expect(requests.map((r) => r.url)).to.deep.equal([`/tasks/${TASK}/events`, `/tasks/${TASK}`, `/tasks/${TASK}`, `/tasks/${TASK}`]);
  });

  it('names an answer that is not the error body by its status, and no answer as status 0', async () => {
    handler = (_req, res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<h1>Bad Gateway</h1>');
    const bad = await new VisionqClient({ url }).get(TASK).catch((e: unknown) => e);
    expect(bad).to.be.instanceOf(VisionqClientError).and.include({ status: 502, code: 'unavailable' });
    expect((bad as Error).message).to.contain('Bad Gateway');

    const closed = `http://127.0.0.1:${await freePort()}`;
    const none = await new VisionqClient({ url: closed }).get(TASK).catch((e: unknown) => e);
    expect(none).to.be.instanceOf(VisionqClientError).and.include({ status: 0, code: 'unavailable' });
    expect((none as Error).message).to.contain(`cannot reach ${closed}`);
  });
});
