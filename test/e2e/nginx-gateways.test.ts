import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { Cluster } from '../support/cluster';
import { ANKLE_BOOT_PNG } from '../support/model-fixtures';
import { startNginx, type NginxServer } from '../support/nginx-server';
import { readEvents } from '../support/sse';

describe('deploy/nginx: the real nginx in front of two real gateways', function () {
  this.timeout(60_000);
  let cluster: Cluster;
  let nginx: NginxServer;
  let gateways: string[];

  before(async () => {
    // No worker: a task stays queued, so its event stream stays open.
    cluster = await Cluster.start({ bucket: 'visionq', workers: 0, env: { EVENTS_HEARTBEAT_MS: '500' } });
    gateways = [new URL(cluster.url).host, new URL(await cluster.addGateway()).host];
    nginx = await startNginx(gateways);
  });

  after(async () => {
    await nginx?.stop();
    await cluster?.stop();
  });

  it('shares requests between the gateways', async () => {
    for (let i = 0; i < 6; i++) expect((await fetch(`${nginx.url}/healthz`)).status).to.equal(200);
    const served = new Set((await nginx.accessLog()).filter((l) => l.uri === '/healthz').map((l) => l.gateway));
    expect([...served].sort()).to.deep.equal([...gateways].sort());
  });

  it('passes a client\'s X-Request-Id through, and gives the gateway one when there is none', async () => {
    const mine = await fetch(`${nginx.url}/models`, { headers: { 'x-request-id': 'trace-42' } });
    expect(mine.status).to.equal(200);
    expect(mine.headers.get('x-request-id')).to.equal('trace-42');
    const made = (await fetch(`${nginx.url}/models`)).headers.get('x-request-id');
    expect(made).to.match(/^[0-9a-f]{32}$/);
    expect((await nginx.accessLog()).map((l) => l.request_id)).to.include.members(['trace-42', made]);
  });

  it('streams an upload past nginx\'s default 1 MiB body limit, and a task\'s events while the stream is open', async () => {
    // A real PNG with 3 MiB after its end: a valid upload the gateway takes (under MAX_IMAGE_BYTES).
    const big = Buffer.concat([await readFile(ANKLE_BOOT_PNG), Buffer.alloc(3 << 20)]);
    const form = new FormData();
    form.append('files', new Blob([big], { type: 'image/png' }), 'big.png');
    const submitted = await cluster.request('POST', '/batch_predict', form, {}, nginx.url);
    expect(submitted.status, JSON.stringify(submitted.body)).to.equal(202);
    const { events, contentType } = await readEvents(`${nginx.url}/tasks/${submitted.body.task_id}/events`, {}, () => true);
    expect(contentType).to.match(/^text\/event-stream/);
    expect(events).to.have.length(1);
    expect(JSON.parse(events[0]!.data)).to.include({ task_id: submitted.body.task_id, status: 'queued' });
  });

  it('answers DESIGN.md\'s error body when no gateway answers', async () => {
    for (const gateway of [cluster.gateway, ...cluster.moreGateways]) {
      gateway.child.kill('SIGKILL');
      await gateway.exited;
    }
    const res = await fetch(`${nginx.url}/models`);
    expect(res.status).to.equal(503);
    expect(res.headers.get('content-type')).to.match(/^application\/json/);
    expect(res.headers.get('retry-after')).to.equal('5');
    expect(await res.json()).to.deep.equal({ error: { code: 'unavailable', message: 'no gateway answered; try again shortly', details: [] } });
  });
});
