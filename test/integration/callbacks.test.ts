import { expect } from 'chai';
import { createServer } from 'node:http';
import { checkCallbackUrl, newWebhookSecret, signWebhook, verifyWebhook } from '@visionq/callbacks';
import { postWebhook } from '../../packages/callbacks/src/webhook-post';
import { rejection } from '../support/promises';
import { verify } from '../support/webhook-verifier';

describe('callbacks: URLs, signatures, pinned delivery', () => {
  it('signs as Standard Webhooks, verified by the README\'s verifier, and every current secret signs', () => {
    const [a, b] = [newWebhookSecret(), newWebhookSecret()];
    const ts = Math.floor(Date.now() / 1000);
    const header = [signWebhook(a, 'msg_1', ts, '{"x":1}'), signWebhook(b, 'msg_1', ts, '{"x":1}')].join(' ');
    expect(header).to.match(/^v1,[A-Za-z0-9+/]+=* v1,[A-Za-z0-9+/]+=*$/);
    for (const secret of [a, b]) expect(verify(secret, { 'webhook-id': 'msg_1', 'webhook-timestamp': String(ts), 'webhook-signature': header }, '{"x":1}')).to.equal(true);
    expect(verifyWebhook(a, 'msg_1', ts, '{"x":2}', header)).to.equal(false);
    expect(verify(a, { 'webhook-id': 'msg_1', 'webhook-timestamp': String(ts - 3600), 'webhook-signature': header }, '{"x":1}'), 'stale').to.equal(false);
  });

  it('refuses loopback, private, link-local and mapped addresses, and http, unless the host is listed', async () => {
    for (const url of ['https://127.0.0.1/', 'https://10.0.0.1/', 'https://172.20.1.1/', 'https://192.168.1.1/', 'https://169.254.169.254/', 'https://[::1]/', 'https://[fe80::1]/', 'https://[::ffff:127.0.0.1]/', 'https://0.0.0.0/', 'http://93.184.216.34/']) {
      expect((await rejection<Error>(checkCallbackUrl(url, []))).message, url).to.match(/callback_url/);
    }
    expect((await checkCallbackUrl('https://93.184.216.34/hook', [])).address).to.deep.equal({ address: '93.184.216.34', family: 4 });
    expect((await checkCallbackUrl('http://127.0.0.1:9/hook', ['127.0.0.1'])).address).to.equal(undefined);
  });

  it('connects to the address the check resolved, never to what the name resolves to later', async () => {
    const server = createServer((req, res) => res.writeHead(req.headers.host?.startsWith('hooks.invalid') ? 204 : 500).end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as { port: number };
      // `hooks.invalid` resolves nowhere: only the pinned address can be what answers.
      const status = await postWebhook({ url: new URL(`http://hooks.invalid:${port}/x`), address: { address: '127.0.0.1', family: 4 } }, {}, '{}', 5_000);
      expect(status).to.equal(204);
    } finally {
      server.close();
    }
  });
});
