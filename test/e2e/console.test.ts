import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { VisionqClient } from '@visionq/client';
import { createKey } from '../support/api-keys';
import { Cluster } from '../support/cluster';
import { ANKLE_BOOT_PNG, FASHION_DIR, REPO_ROOT } from '../support/model-fixtures';

/** The README's screenshots, rewritten when UPDATE_SCREENSHOTS=1; otherwise they are taken into a folder of the run's, so a test run leaves the tree as it was. */
const README_SCREENSHOTS = join(REPO_ROOT, 'docs', 'console');
const UPLOADS = ['0001-pullover.png', '0002-trouser.png', '0008-sandal.png'];
/** Images under the prefix of the task cancelled while it runs: far more than one worker gets through before the click. */
const BIG_TASK_IMAGES = 4000;

describe('the web console in a real Chromium (Debian\'s, driven by playwright-core) against a real gateway and worker', function () {
  this.timeout(120_000);
  const bucket = `vq-console-${randomBytes(4).toString('hex')}`;
  let dir: string;
  let key: string;
  let cluster: Cluster;
  let client: VisionqClient;
  let browser: Browser;
  let page: Page;
  /** Every request the page made to anywhere but the gateway (each aborted). */
  const elsewhere: string[] = [];
  const tasks: Record<'uploaded' | 'big' | 'predicted', string> = { uploaded: '', big: '', predicted: '' };

  let screenshots: string;
  const shoot = (name: string) => page.screenshot({ path: join(screenshots, `${name}.png`) });
  const heading = () => page.locator('main h1');
  const taskStatus = () => page.locator('.facts .status');
  const taskIdOfPage = () => decodeURIComponent(new URL(page.url()).hash.replace('#/tasks/', ''));

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vq-console-'));
    const keysFile = join(dir, 'keys.json');
    key = createKey(keysFile, '--tenant', 'acme');
    cluster = await Cluster.start({ bucket, workers: 1, env: { API_KEYS_FILE: keysFile } });
    client = new VisionqClient({ url: cluster.url, key });
    for (const name of UPLOADS) await copyFile(join(FASHION_DIR, name), join(dir, name));
    await writeFile(join(dir, 'notes.txt'), 'not an image\n');
    const boot = await readFile(ANKLE_BOOT_PNG);
    for (let i = 0; i < BIG_TASK_IMAGES; i++) await cluster.putLocal(`big/${String(i).padStart(5, '0')}.png`, boot);
    screenshots = process.env.UPDATE_SCREENSHOTS === '1' ? README_SCREENSHOTS : join(dir, 'screenshots');
    await mkdir(screenshots, { recursive: true });
    browser = await chromium.launch({ executablePath: execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim() });
    const context = await browser.newContext({ viewport: { width: 1200, height: 800 }, acceptDownloads: true });
    page = await context.newPage();
    await page.route('**/*', (route) => (route.request().url().startsWith(`${cluster.url}/`) ? route.continue() : (elsewhere.push(route.request().url()), route.abort())));
  });

  after(async () => {
    await browser?.close();
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the page at / without a key, index.html never cached and the hashed assets for good; unknown API paths keep their JSON errors', async () => {
    const index = await fetch(`${cluster.url}/`);
    expect(index.status).to.equal(200);
    expect(index.headers.get('content-type')).to.match(/^text\/html/);
    expect(index.headers.get('cache-control')).to.equal('no-cache');
    const html = await index.text();
    const assets = [...html.matchAll(/(?:src|href)="([^"#]+)"/g)].map((m) => m[1]!);
    expect(assets).to.have.lengthOf(2);
    for (const asset of assets) {
      const res = await fetch(new URL(asset, `${cluster.url}/`));
      expect(res.status, asset).to.equal(200);
      expect(res.headers.get('cache-control'), asset).to.equal('public, max-age=31536000, immutable');
    }
    const unknown = await fetch(`${cluster.url}/no-such-thing`, { headers: { authorization: `Bearer ${key}` } });
    expect(unknown.status).to.equal(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).to.equal('not_found');
    expect((await fetch(`${cluster.url}/no-such-thing`)).status, 'without a key, as before').to.equal(401);
  });

  it('signs in with the keyboard: a wrong key is refused with its code, the right one opens the task list', async () => {
    await page.goto(`${cluster.url}/`);
    expect(await heading().textContent()).to.equal('Sign in');
    expect(await page.getByRole('button', { name: 'Sign out' }).isVisible(), 'nothing to sign out of yet').to.equal(false);
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement?.id'), 'the key field comes first in the focus order').to.equal('key');
    await page.keyboard.type('vq_not-a-key');
    await page.keyboard.press('Enter');
    await page.getByRole('alert').filter({ hasText: 'unauthorized' }).waitFor();
    await shoot('sign-in');
    await page.getByLabel('API key').fill(key);
    await page.keyboard.press('Enter');
    await page.locator('main h1', { hasText: 'Tasks' }).waitFor();
    expect(await page.evaluate("sessionStorage.getItem('visionq-key')")).to.equal(key);
  });

  it('uploads images (one is no image), watches the task to its end, shows results with thumbnails, top-k bars and the error line\'s code', async () => {
    await page.getByRole('link', { name: 'New task' }).first().click();
    await page.locator('#files').setInputFiles([...UPLOADS, 'notes.txt'].map((name) => join(dir, name)));
    await page.getByLabel('Top-k classes').fill('3');
    await page.getByText('4 files chosen').waitFor();
    await shoot('new-task');
    await page.getByRole('button', { name: 'Start task' }).click();
    await page.waitForURL(/#\/tasks\/[0-9a-f-]{36}$/);
    tasks.uploaded = taskIdOfPage();
    await page.locator('#results-heading', { hasText: 'Results (4)' }).waitFor();
    expect(await taskStatus().textContent()).to.equal('completed_with_errors');
    expect(await page.locator('#progress-text').textContent()).to.equal('4 of 4 images done, 1 failed');

    const truth = [];
    for await (const result of client.results(tasks.uploaded)) truth.push(result);
    const failed = truth.find((r) => 'error' in r)!;
    const succeeded = truth.find((r) => 'predictions' in r && r.image.endsWith('-0002-trouser.png'))!;
    if (!('error' in failed) || !('predictions' in succeeded)) throw new Error('expected an error line and a prediction');
    const trouser = page.locator('.result', { hasText: '0002-trouser.png' });
    expect(await trouser.locator('.top-k .label').allTextContents()).to.deep.equal(succeeded.predictions.map((p) => p.label));
    expect(await trouser.locator('.top-k meter').first().getAttribute('value')).to.equal(String(succeeded.predictions[0]!.probability));
    expect(await page.locator('.result.failed .error-line code').allTextContents()).to.deep.equal([failed.error.code]);
    // The dropped files themselves, but for the one the browser cannot show either.
    await page.locator('.result.failed .thumbnail.none').waitFor();
    const thumbnails = await page.locator('.result img.thumbnail').evaluateAll((images) => images.map((i) => i.getAttribute('src') ?? ''));
    expect(thumbnails).to.have.lengthOf(UPLOADS.length);
    expect(thumbnails.every((src) => src.startsWith('blob:'))).to.equal(true);
    await shoot('task');
  });

  it('downloads the results as CSV, one row per class and one per error line', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download CSV' }).click()]);
    expect(download.suggestedFilename()).to.equal(`${tasks.uploaded}.csv`);
    const lines = (await readFile(await download.path(), 'utf8')).trim().split('\n');
    expect(lines[0]).to.equal('image,rank,class_id,label,probability,error_code,error_message');
    expect(lines).to.have.lengthOf(1 + UPLOADS.length * 3 + 1);
    expect(lines.filter((l) => l.includes('-notes.txt,'))).to.have.lengthOf(1);
    expect(lines.filter((l) => l.includes('-0002-trouser.png,1,'))).to.have.lengthOf(1);
  });

  it('retries the task with its failed images, and follows it to its end again', async () => {
    await page.getByRole('button', { name: 'Retry' }).click();
    await page.locator('.facts div', { hasText: 'Retries' }).locator('dd', { hasText: '1' }).waitFor();
    await page.locator('#results-heading', { hasText: 'Results (4)' }).waitFor();
    const view = await client.get(tasks.uploaded);
    expect([view.status, view.retries]).to.deep.equal(['completed_with_errors', 1]);
    expect(await taskStatus().textContent()).to.equal(view.status);
  });

  it('starts a task of an s3:// prefix and cancels it while it runs', async () => {
    await page.getByRole('link', { name: 'New task' }).first().click();
    await page.getByLabel('Or an s3:// prefix').fill(`s3://${bucket}/big/`);
    await page.getByRole('button', { name: 'Start task' }).click();
    await page.waitForURL(/#\/tasks\/[0-9a-f-]{36}$/);
    tasks.big = taskIdOfPage();
    await page.locator('.facts .status', { hasText: 'running' }).waitFor();
    await page.getByRole('button', { name: 'Cancel task' }).click();
    await page.locator('.facts .status', { hasText: 'cancelled' }).waitFor();
    expect(await page.getByRole('button', { name: 'Cancel task' }).count(), 'no cancel once ended').to.equal(0);
    const view = await client.get(tasks.big);
    expect(view.status).to.equal('cancelled');
    expect(view.progress.done).to.be.lessThan(BIG_TASK_IMAGES);
  });

  it('classifies one image on the predict page, its top-k shown with bars', async () => {
    await page.getByRole('link', { name: 'Predict' }).click();
    await page.locator('#image').setInputFiles(ANKLE_BOOT_PNG);
    await page.getByRole('button', { name: 'Classify' }).click();
    await page.locator('.result .top-k li').first().waitFor();
    expect(await page.locator('.result .top-k .label').first().textContent()).to.equal('Ankle boot');
    expect(await page.locator('.result .top-k meter').count()).to.equal(5);
    tasks.predicted = decodeURIComponent((await page.locator('#predict-task').getAttribute('href'))!.replace('#/tasks/', ''));
    await shoot('predict');
  });

  it('lists the tenant\'s tasks newest first, an unended one followed live, filters them by status, and signs out', async () => {
    const { task_id: live } = await client.submit({ source: `s3://${bucket}/big/` });
    await page.getByRole('link', { name: 'Tasks' }).click();
    const rows = page.locator('tbody tr[data-task]');
    await rows.nth(3).waitFor();
    expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-task')))).to.deep.equal([live, tasks.predicted, tasks.big, tasks.uploaded]);
    // Marks this document: the changes below must come over the events stream, not by loading the page again.
    await page.evaluate("document.body.dataset.mark = 'loaded once'");
    await page.locator(`tr[data-task="${live}"] .status`, { hasText: 'running' }).waitFor();
    await client.cancel(live);
    await page.locator(`tr[data-task="${live}"] .status`, { hasText: 'cancelled' }).waitFor();
    expect(await page.evaluate('document.body.dataset.mark')).to.equal('loaded once');
    expect(await page.locator('tbody .status').allTextContents()).to.deep.equal(['cancelled', 'succeeded', 'cancelled', 'completed_with_errors']);
    await shoot('tasks');
    await page.getByLabel('Status').selectOption('cancelled');
    await rows.nth(2).waitFor({ state: 'detached' });
    expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-task')))).to.deep.equal([live, tasks.big]);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('main h1', { hasText: 'Sign in' }).waitFor();
    expect(await page.evaluate("sessionStorage.getItem('visionq-key')")).to.equal(null);
  });

  it('sent no request anywhere but the gateway', () => {
    expect(elsewhere).to.deep.equal([]);
  });
});

describe('the web console on a gateway without keys (real Chromium, real gateway)', function () {
  this.timeout(60_000);
  let cluster: Cluster;
  let browser: Browser;

  before(async () => {
    // No API_KEYS_FILE on a loopback HOST: the gateway serves openly.
    cluster = await Cluster.start({ bucket: `vq-console-${randomBytes(4).toString('hex')}`, workers: 0 });
    browser = await chromium.launch({ executablePath: execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim() });
  });

  after(async () => {
    await browser?.close();
    await cluster?.stop();
  });

  it('skips sign-in and opens on the task list, with nothing to sign out of', async () => {
    const page = await browser.newPage();
    await page.goto(`${cluster.url}/#/sign-in`);
    await page.locator('main h1', { hasText: 'Tasks' }).waitFor();
    await page.locator('tbody td', { hasText: 'No tasks.' }).waitFor();
    expect(await page.getByRole('button', { name: 'Sign out' }).isVisible()).to.equal(false);
    expect(await page.getByRole('link', { name: 'New task' }).first().isVisible()).to.equal(true);
  });
});
