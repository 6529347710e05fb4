import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Cluster } from '../support/cluster';
import { ANKLE_BOOT_PNG } from '../support/model-fixtures';
import { startWebhookReceiver } from '../support/webhook-receiver';
import { verify } from '../support/webhook-verifier';

const SECRET = `whsec_${randomBytes(24).toString('base64')}`;
/** Each task's first attempts the receiver answers 500; then 200. */
const FAILURES = 2;

describe('callbacks: signed, retried, exactly once per task over two gateways and two workers (whole processes)', function () {
  this.timeout(120_000);
  const bucket = `vq-hooks-${randomBytes(4).toString('hex')}`;
  let cluster: Cluster;
  let second: string;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  let hook: string;

  before(async () => {
    receiver = await startWebhookReceiver((_task, earlier) => (earlier < FAILURES ? 500 : 200));
    hook = receiver.url;
    cluster = await Cluster.start({
      bucket,
      workers: 2,
      env: { WEBHOOK_SECRET: SECRET, CALLBACK_ALLOWED_HOSTS: '127.0.0.1', CALLBACK_BACKOFF_MS: '100' },
    });
    await cluster.putLocal('in/boot.png', await readFile(ANKLE_BOOT_PNG));
    second = await cluster.addGateway();
  });

  after(async () => {
    await cluster?.stop();
    receiver?.close();
  });

  it('POSTs each ended task once, signed, through a receiver that fails its first attempts, and shows every attempt', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const submit = await cluster.request('POST', '/batch_predict', { images: [`s3://${bucket}/in/boot.png`], callback_url: `${hook}?task=t${i}` }, {}, i % 2 ? second : cluster.url);
      expect(submit.status, JSON.stringify(submit.body)).to.equal(202);
      ids.push(submit.body.task_id);
    }
    // Wait for the state: every task's callback delivered (bounded).
    const views: any[] = [];
    for (const id of ids) {
      let view: any;
      for (let i = 0; i < 200; i++) {
        view = (await cluster.request('GET', `/tasks/${id}`)).body;
        if (view.callback?.state === 'delivered') break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      views.push(view);
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // room for a duplicate to show, were there one
    for (const [i, view] of views.entries()) {
      expect(view.callback.state, JSON.stringify(view.callback)).to.equal('delivered');
      expect(view.callback.attempts.map((a: { status: number }) => a.status)).to.deep.equal([500, 500, 200]);
      for (const attempt of view.callback.attempts) expect(attempt.latency_ms).to.be.a('number');
      const mine = receiver.received.filter((r) => r.task === `t${i}`);
      expect(mine.map((r) => r.answered), `deliveries of task ${i}`).to.deep.equal([500, 500, 200]);
      const delivered = mine.at(-1)!;
      expect(verify(SECRET, delivered.headers, delivered.body)).to.equal(true);
      expect(verify(`whsec_${randomBytes(24).toString('base64')}`, delivered.headers, delivered.body)).to.equal(false);
      expect(JSON.parse(delivered.body)).to.include({ task_id: ids[i], status: 'succeeded' });
      expect(new Set(mine.map((r) => r.headers['webhook-id'])).size).to.equal(1);
    }
  });

  it('refuses, at submit, callbacks that could reach the deployment\'s own network', async () => {
    const image = `s3://${bucket}/in/boot.png`;
    for (const url of ['http://127.0.0.2/hook', 'https://10.1.2.3/hook', 'https://169.254.169.254/latest', 'https://[::1]/x', 'https://localhost/x', 'ftp://example.com/x', 'https://user:pw@example.com/x', 'not a url']) {
      const reply = await cluster.request('POST', '/batch_predict', { images: [image], callback_url: url });
      expect(reply.status, url).to.equal(400);
      expect(reply.body.error.details[0].field).to.equal('callback_url');
    }
  });
});
