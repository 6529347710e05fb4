import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Cluster } from '../support/cluster';
import { ANKLE_BOOT_PNG } from '../support/model-fixtures';
import { httpRequest, multipart, rawRequest, type RawReply } from '../support/raw-http';

const BOUNDARY = 'XX';
const FORM = { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` };

/** Every file under `dir`, as paths relative to it. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => !e.isDirectory())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}


/** Waits (bounded) for the uploads folder to hold nothing: cleanup after an answer already sent may still run. */
async function expectNoUploads(dir: string): Promise<void> {
  // The folder may go between a look and a read: the store prunes the folders a failed upload made.
  const left = () => {
    try {
      return readdirSync(dir, { withFileTypes: true, recursive: true }).map((e) => join(e.parentPath, e.name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  };
  for (let i = 0; i < 100 && left().length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  expect(left()).to.deep.equal([]);
}

function expectError(reply: RawReply, status: number, code: string): void {
  expect(reply.status, reply.body).to.equal(status);
  expect(reply.headers['content-type']).to.match(/^application\/json/);
  const body = JSON.parse(reply.body);
  expect(body.error).to.include({ code });
  expect(body.error.message).to.be.a('string');
  expect(body.error.details).to.be.an('array');
}

describe('hostile requests: every one answered, nothing crashed, leaked or left behind (whole processes)', function () {
  this.timeout(120_000);
  const bucket = `vq-hostile-${randomBytes(4).toString('hex')}`;
  let cluster: Cluster;
  let port: number;
  let png: Buffer;
  const uploads = () => join(cluster.dataDir, bucket, 'uploads');

  before(async () => {
    png = await readFile(ANKLE_BOOT_PNG);
    cluster = await Cluster.start({
      bucket,
      workers: 1,
      env: { HEADERS_TIMEOUT_MS: '1000', REQUEST_TIMEOUT_MS: '2000', PREDICT_TIMEOUT_MS: '20000', MAX_IMAGE_BYTES: '100000' },
    });
    port = Number(new URL(cluster.url).port);
  });

  after(async () => {
    await cluster?.stop();
  });

  it('answers a multipart body cut off mid-file with 400, stays up, and keeps none of it', async () => {
    for (const path of ['/predict', '/batch_predict']) {
      const field = path === '/predict' ? 'file' : 'files';
      const reply = await rawRequest(port, httpRequest('POST', path, FORM, `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${field}"; filename="a.png"\r\n\r\nabc`));
      expectError(reply, 400, 'invalid_request');
      expect(cluster.gateway.child.exitCode, 'gateway alive').to.equal(null);
    }
    expect((await cluster.request('GET', '/healthz')).status).to.equal(200);
    expect(filesUnder(uploads())).to.deep.equal([]);
  });

  it('closes every file and leaves no temp file or folder when clients hang up mid-upload', async () => {
    const before = cluster.gatewayFdTargets();
    const baseline = before.length;
    const head = httpRequest('POST', '/batch_predict', { ...FORM, 'content-length': '10000000' }, multipart(BOUNDARY, [['files', randomBytes(64 * 1024), 'a.png']], true));
    const refused = () => Cluster.lines(cluster.gateway, 'upload refused').length;
    const refusedBefore = refused();
    for (let i = 0; i < 20; i++) await rawRequest(port, head, { hangUp: true });
    // Wait for states, not times: the gateway has refused all twenty, which it logs once
    // their puts have settled and what they stored is deleted …
    for (let i = 0; i < 600 && refused() < refusedBefore + 20; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(refused() - refusedBefore, 'hung-up uploads refused').to.equal(20);
    // … and every descriptor they opened is closed again (a store temp file, `.vq-put-*`, a
    // moment after its put settled: its write stream closes it asynchronously).
    for (let i = 0; i < 600 && cluster.gatewayFdTargets().length > baseline; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(cluster.gatewayFdTargets(), `before: ${before.join(' ')}`).to.have.length.at.most(baseline);
    await expectNoUploads(uploads());
  });

  it('leaves no folder behind for refused multipart requests', async () => {
    const refused = [
      multipart(BOUNDARY, [['files', png, 'a.png'], ['top_k', 'five']]),
      multipart(BOUNDARY, [['files', png, 'a.png'], ['colour', 'red']]),
      multipart(BOUNDARY, [['files', png, 'a.png'], ['model', 'fashion-vgg'], ['model', 'other']]),
    ];
    for (const body of refused) expectError(await rawRequest(port, httpRequest('POST', '/batch_predict', FORM, body)), 400, 'invalid_request');
    // A file over MAX_IMAGE_BYTES, between two that fit: the whole form is still read, and answered.
    const oversized = multipart(BOUNDARY, [['files', png, 'a.png'], ['files', randomBytes(300_000), 'huge.png'], ['files', png, 'b.png']]);
    expectError(await rawRequest(port, httpRequest('POST', '/batch_predict', FORM, oversized)), 413, 'payload_too_large');
    expect(existsSync(uploads()) ? readdirSync(uploads()) : []).to.deep.equal([]);
  });

  it('refuses form fields past the parser\'s limits, naming the limit, rather than dropping them', async () => {
    const many = Array.from({ length: 40 }, (_, i): [string, string] => [`f${i}`, 'x']);
    const tooMany = await rawRequest(port, httpRequest('POST', '/batch_predict', FORM, multipart(BOUNDARY, [...many, ['model', 'nope'], ['files', png, 'a.png']])));
    expectError(tooMany, 413, 'payload_too_large');
    expect(JSON.parse(tooMany.body).error.message).to.match(/at most 32 form fields/);
    const longName = await rawRequest(port, httpRequest('POST', '/batch_predict', FORM, multipart(BOUNDARY, [['m'.repeat(300), 'x'], ['files', png, 'a.png']])));
    expectError(longName, 400, 'invalid_request');
    expect(existsSync(uploads()) ? readdirSync(uploads()) : []).to.deep.equal([]);
  });

  it('refuses pathological JSON, wrong JSON types and compressed bodies with a 4xx, enqueuing nothing', async () => {
    const before = await cluster.footprint();
    const image = `s3://${bucket}/a.png`;
    const cases: Array<[string, string, Record<string, string>, number, string]> = [
      ['deep nesting', `{"images": ["${image}"], "metadata": {"a": ${'['.repeat(5000)}${']'.repeat(5000)}}}`, {}, 400, 'invalid_request'],
      ['top-level deep array', '['.repeat(100_000) + ']'.repeat(100_000), {}, 400, 'invalid_request'],
      ['top_k as a string', JSON.stringify({ images: [image], top_k: '5' }), {}, 400, 'invalid_request'],
      ['top_k as a boolean', JSON.stringify({ images: [image], top_k: true }), {}, 400, 'invalid_request'],
      ['images of numbers', JSON.stringify({ images: [1, 2] }), {}, 400, 'invalid_request'],
      ['a string body', '"images"', {}, 400, 'invalid_request'],
      ['gzip encoding', JSON.stringify({ images: [image] }), { 'content-encoding': 'gzip' }, 415, 'unsupported_media_type'],
      ['an unknown charset', JSON.stringify({ images: [image] }), { 'content-type': 'application/json; charset=koi8-r' }, 415, 'unsupported_media_type'],
      ['output climbing out', JSON.stringify({ images: [image], output: `s3://${bucket}/../other/` }), {}, 400, 'invalid_argument'],
      ['output with an empty segment', JSON.stringify({ images: [image], output: `s3://${bucket}/a//b/` }), {}, 400, 'invalid_argument'],
      ['source climbing out', JSON.stringify({ source: `s3://${bucket}/x/../../y/` }), {}, 400, 'invalid_argument'],
      ['source with a control character', JSON.stringify({ source: `s3://${bucket}/a\u0001/` }), {}, 400, 'invalid_argument'],
      ['image key climbing out', JSON.stringify({ images: [`s3://${bucket}/../etc/passwd`] }), {}, 400, 'invalid_argument'],
    ];
    for (const [what, body, headers, status, code] of cases) {
      const reply = await rawRequest(port, httpRequest('POST', '/batch_predict', { 'content-type': 'application/json', ...headers }, body));
      expect(reply.status, what).to.equal(status);
      expect(JSON.parse(reply.body).error, what).to.include({ code });
    }
    expect(await cluster.footprint()).to.deep.equal(before);
  });

  it('answers Node\'s own parser refusals with the JSON error body', async () => {
    expectError(await rawRequest(port, httpRequest('GET', '/healthz', { 'x-big': 'a'.repeat(20_000) })), 431, 'headers_too_large');
    expectError(await rawRequest(port, 'GARBAGE / HTTP/1.1\r\n\r\n'), 400, 'invalid_request');
    expectError(await rawRequest(port, 'POST /predict HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n'), 400, 'invalid_request');
  });

  it('closes a connection that sends half its headers, or half its body, with 408', async () => {
    expectError(await rawRequest(port, 'POST /batch_predict HTTP/1.1\r\nhost: x\r\n'), 408, 'request_timeout');
    const halfBody = httpRequest('POST', '/batch_predict', { ...FORM, 'content-length': '100000' }, multipart(BOUNDARY, [['files', png, 'a.png']], true));
    expectError(await rawRequest(port, halfBody), 408, 'request_timeout');
    await expectNoUploads(uploads());
  });

  it('refuses an SVG behind an unusual prologue as unsupported_format, before any decoder', async () => {
    const svg = '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>';
    const reply = await rawRequest(port, httpRequest('POST', '/predict', FORM, multipart(BOUNDARY, [['file', svg, 'x.png']])));
    expectError(reply, 415, 'unsupported_format');
    expect(JSON.parse(reply.body).error.message).to.match(/format svg is not supported/);
  });
});
