import { expect } from 'chai';
import { execFile, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster } from '../support/cluster';
import { ANKLE_BOOT_PNG, FASHION_DIR, PHOTOS_DIR, REPO_ROOT, tempModelsDir, writeModel } from '../support/model-fixtures';

const CLI = join(REPO_ROOT, 'apps', 'cli', 'bin', 'visionq.js');

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

async function visionq(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('visionq CLI (whole process)', function () {
  this.timeout(120_000);
  let models: { dir: string; cleanup: () => Promise<void> };
  before(async () => {
    models = await tempModelsDir();
    await writeModel(models.dir);
  });
  after(async () => {
    await models.cleanup();
  });

  it('classifies a real photo with the bundled default model', async () => {
    const run = await visionq(['predict', join(FASHION_DIR, '0000-ankle_boot.png')]);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.contain('model: fashion-vgg');
    const firstRow = run.stdout.split('\n')[2]!;
    expect(firstRow).to.contain('0000-ankle_boot.png').and.contain('Ankle boot');
  });

  it('prints one JSON line per image, good and bad mixed, in input order', async () => {
    const textAsJpeg = join(models.dir, 'notes.jpg');
    await writeFile(textAsJpeg, 'this is text, not a JPEG\n');
    const files = [join(PHOTOS_DIR, 'chelsea.png'), textAsJpeg, join(models.dir, 'missing.png'), join(PHOTOS_DIR, 'rocket.jpg')];
    const run = await visionq(['predict', '--json', '--top-k', '3', '--model', 'tiny-vgg', '--models-dir', models.dir, ...files]);
    expect(run.code, run.stderr).to.equal(1);
    const lines = run.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.image)).to.deep.equal(files);
    for (const good of [lines[0], lines[3]]) {
      expect(good.predictions).to.have.length(3);
      expect(Object.keys(good.predictions[0])).to.deep.equal(['class_id', 'label', 'probability']);
      const sum = good.predictions.reduce((s: number, p: { probability: number }) => s + p.probability, 0);
      expect(sum).to.be.greaterThan(0).and.at.most(1.000001);
    }
    expect(lines[1].error.code).to.equal('image_decode_failed');
    expect(lines[2].error.code).to.equal('image_not_found');
  });

  it('lists the models it can serve', async () => {
    const run = await visionq(['models', '--json', '--models-dir', models.dir]);
    expect(run.code, run.stderr).to.equal(0);
    const { models: listed } = JSON.parse(run.stdout);
    expect(listed).to.have.length(1);
    expect(listed[0]).to.deep.include({ name: 'tiny-vgg', classes: 10, provider: 'cpu' });
  });

  it('names the bad variable and exits non-zero on a bad configuration', async () => {
    const run = await visionq(['predict', join(PHOTOS_DIR, 'chelsea.png')], { MAX_BATCH_SIZE: 'zero' });
    expect(run.code).to.equal(1);
    expect(run.stderr).to.contain('MAX_BATCH_SIZE');
    expect(run.stdout).to.equal('');
  });

  it('names the known models when asked for an unknown one', async () => {
    const run = await visionq(['predict', '--model', 'resnet', '--models-dir', models.dir, join(PHOTOS_DIR, 'chelsea.png')]);
    expect(run.code).to.equal(1);
    expect(run.stderr).to.contain('resnet').and.contain('tiny-vgg');
  });
});

/** Its words for a task's final view, as `formatTask` writes them. */
const counts = (done: number, total: number, failed: number) => new RegExp(`images:\\s+${done}/${total} done: ${done - failed} succeeded, ${failed} failed`);

/**
 * The remote commands as a user runs them, against a real gateway (without API keys, as
 * `npm start` serves) and worker: first with no worker yet, so tasks stay queued for
 * cancel and Ctrl-C, then with one.
 */
describe('visionq CLI against a gateway (whole processes)', function () {
  this.timeout(120_000);
  const bucket = `vq-cli-${randomBytes(4).toString('hex')}`;
  let cluster: Cluster;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const queuedImages = () => Array.from({ length: 50 }, () => `s3://${bucket}/in/boot.png`);

  before(async () => {
    cluster = await Cluster.start({ bucket, workers: 0 });
    env = { VISIONQ_URL: cluster.url };
    await cluster.putLocal('in/boot.png', await readFile(ANKLE_BOOT_PNG));
    dir = await mkdtemp(join(tmpdir(), 'vq-cli-'));
    const photos = join(dir, 'photos');
    await mkdir(join(photos, 'more'), { recursive: true });
    await mkdir(join(photos, '.cache'));
    await copyFile(join(PHOTOS_DIR, 'chelsea.png'), join(photos, 'chelsea.png'));
    await copyFile(join(PHOTOS_DIR, 'rocket.jpg'), join(photos, 'more', 'rocket.jpg'));
    await copyFile(join(FASHION_DIR, '0000-ankle_boot.png'), join(photos, 'boot.PNG'));
    // Skipped: hidden, or not an image by its extension.
    await copyFile(join(PHOTOS_DIR, 'coffee.png'), join(photos, '.hidden.png'));
    await copyFile(join(PHOTOS_DIR, 'coffee.png'), join(photos, '.cache', 'coffee.png'));
    await writeFile(join(photos, 'notes.txt'), 'not an image\n');
    await writeFile(join(dir, 'bad.png'), 'this is text, not a PNG\n');
  });

  after(async () => {
    await cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('with no worker yet', () => {
    it('cancels a queued task', async () => {
      const submitted = await visionq(['submit', '--json', ...queuedImages()], env);
      expect(submitted.code, submitted.stderr).to.equal(0);
      const { task_id } = JSON.parse(submitted.stdout);
      const run = await visionq(['cancel', task_id], env);
      expect(run.code, run.stderr).to.equal(0);
      expect(run.stdout).to.match(/status:\s+cancelled/);
      const again = await visionq(['cancel', task_id], env);
      expect(again.code).to.equal(2);
      expect(again.stderr).to.contain(`visionq: conflict (409): task ${task_id} has already ended (cancelled)`);
    });

    it('leaves the task running on Ctrl-C when not on a terminal, and prints its id', async () => {
      const child = spawn(process.execPath, [CLI, 'submit', '--wait', ...queuedImages()], { cwd: REPO_ROOT, env: { ...process.env, ...env } });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
      child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
      const exited = once(child, 'exit');
      // Its first progress line: it is following the task.
      for (let i = 0; i < 600 && !/images/.test(stderr); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      const taskId = /task ([0-9a-f-]{36}) queued/.exec(stderr)?.[1];
      expect(taskId, stderr).to.be.a('string');
      child.kill('SIGINT');
      const [code] = await exited;
      expect(code, stderr).to.equal(130);
      expect(stdout).to.equal(`task ${taskId} left running: visionq watch ${taskId}\n`);
      expect((await cluster.request('GET', `/tasks/${taskId}`)).body.status).to.equal('queued');
      await cluster.request('DELETE', `/tasks/${taskId}`);
    });

    it('asks on a terminal whether Ctrl-C should cancel the task, and cancels it on "y"', async () => {
      // `exec`: the shell script starts must not stay in the terminal's foreground group, where
      // dash (unlike bash) dies of the ^C meant for the CLI and script reports 130.
      const command = `exec ${[process.execPath, CLI, 'submit', '--wait', '--url', cluster.url, ...queuedImages()].map((word) => `'${word}'`).join(' ')}`;
      // util-linux's script runs it on a pseudo-terminal: ^C written to its input is the terminal's interrupt.
      const child = spawn('script', ['-qfec', command, '/dev/null'], { cwd: REPO_ROOT, env: { ...process.env, SHELL: '/bin/sh' } });
      let shown = '';
      child.stdout.setEncoding('utf8').on('data', (text: string) => (shown += text));
      const exited = once(child, 'exit');
      const until = async (pattern: RegExp) => {
        for (let i = 0; i < 600 && !pattern.test(shown); i++) await new Promise((resolve) => setTimeout(resolve, 50));
        expect(shown).to.match(pattern);
      };
      await until(/\| 0\/50 images \|/);
      child.stdin.write('\x03');
      await until(/Cancel task [0-9a-f-]{36}\? \[y\/N\] /);
      child.stdin.write('y\r');
      const [code] = await exited;
      expect(code, shown).to.equal(1);
      expect(shown).to.match(/status:\s+cancelled/);
      const taskId = /task ([0-9a-f-]{36}) queued/.exec(shown)![1];
      expect((await cluster.request('GET', `/tasks/${taskId}`)).body.status).to.equal('cancelled');
    });
  });

  describe('with a worker', () => {
    let taskId: string;
    before(async () => {
      await cluster.addWorker();
    });

    it('submits a folder, walked for images, and waits: plain progress lines, then the counts', async () => {
      const run = await visionq(['submit', join(dir, 'photos'), '--wait', '--top-k', '2'], env);
      expect(run.code, run.stderr).to.equal(0);
      expect(run.stdout).to.match(/status:\s+succeeded/).and.match(counts(3, 3, 0));
      taskId = /task:\s+([0-9a-f-]{36})/.exec(run.stdout)![1]!;
      const lines = run.stderr.trim().split('\n');
      expect(lines[0]).to.equal(`task ${taskId} queued`);
      expect(lines.at(-1)).to.match(/^succeeded 3\/3 images, 0 failed, [\d.]+ images\/s, ETA -$/);
      for (const line of lines.slice(1)) expect(line).to.match(/^(queued|running|succeeded) \d+\/\d+ images, \d+ failed/);
    });

    it('writes the results as CSV, one row per class, to a file', async () => {
      const out = join(dir, 'results.csv');
      const run = await visionq(['results', taskId, '--format', 'csv', '--out', out], env);
      expect(run.code, run.stderr).to.equal(0);
      const rows = (await readFile(out, 'utf8')).trim().split('\n');
      expect(rows[0]).to.equal('image,rank,class_id,label,probability,error_code,error_message');
      expect(rows).to.have.length(1 + 3 * 2);
      const images = new Set(rows.slice(1).map((r) => r.split(',')[0]!.replace(/^.*\/\d{5}-/, '')));
      expect([...images].sort()).to.deep.equal(['boot.PNG', 'chelsea.png', 'rocket.jpg']);
      expect(rows[1]).to.match(/^s3:\/\/[^,]+,1,\d+,[^,]+,0\.\d+,,$/);
    });

    it('exits 1 for a batch with a bad image, and --json prints the final view as one line', async () => {
      const run = await visionq(['submit', join(dir, 'bad.png'), ANKLE_BOOT_PNG, '--wait', '--json'], env);
      expect(run.code, run.stderr).to.equal(1);
      const lines = run.stdout.trim().split('\n');
      expect(lines).to.have.length(1);
      const view = JSON.parse(lines[0]!);
      expect(view).to.deep.include({ status: 'completed_with_errors', progress: { total: 2, done: 2, succeeded: 1, failed: 1 } });
      expect(view.results).to.have.length(2);
      const results = await visionq(['results', view.task_id], env);
      expect(results.code).to.equal(1);
      const errors = results.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.error);
      expect(errors.map((r) => r.error.code)).to.deep.equal(['image_decode_failed']);
    });

    it('retries the failed images of a task once the missing one is there (--url)', async () => {
      const late = `late/${randomUUID()}.png`;
      const first = await visionq(['submit', '--url', cluster.url, `s3://${bucket}/in/boot.png`, `s3://${bucket}/${late}`, '--wait']);
      expect(first.code, first.stderr).to.equal(1);
      expect(first.stdout).to.match(/status:\s+completed_with_errors/).and.match(counts(2, 2, 1));
      const id = /task:\s+([0-9a-f-]{36})/.exec(first.stdout)![1]!;
      await cluster.putLocal(late, await readFile(ANKLE_BOOT_PNG));
      const run = await visionq(['retry', '--url', cluster.url, id, '--failed-images', '--wait']);
      expect(run.code, run.stderr).to.equal(0);
      expect(run.stdout).to.match(/status:\s+succeeded/).and.match(counts(2, 2, 0)).and.match(/retries:\s+1/);
    });

    it('lists the tenant\'s recent tasks without an id, newest first, and one task with it', async () => {
      const run = await visionq(['status'], env);
      expect(run.code, run.stderr).to.equal(0);
      const [heading, ...rows] = run.stdout.trim().split('\n');
      expect(heading).to.match(/^TASK\s+STATUS\s+MODEL\s+DONE\s+FAILED\s+CREATED$/);
      const cells = rows.map((r) => r.split(/\s+/));
      expect(cells.map((c) => c[0])).to.include(taskId);
      const created = cells.map((c) => c[5]!);
      expect(created).to.deep.equal([...created].sort().reverse());
      const cancelled = await visionq(['status', '--status', 'cancelled', '--json'], env);
      const views = cancelled.stdout.trim().split('\n').map((l) => JSON.parse(l));
      expect(views.length).to.be.at.least(2);
      expect(views.every((v) => v.status === 'cancelled')).to.equal(true);
      const one = await visionq(['status', taskId], env);
      expect(one.code, one.stderr).to.equal(0);
      expect(one.stdout).to.match(/status:\s+succeeded/).and.match(counts(3, 3, 0));
    });

    it('shows a progress bar when stderr is a terminal', async () => {
      const command = [process.execPath, CLI, 'submit', join(dir, 'photos'), '--wait', '--url', cluster.url].map((word) => `'${word}'`).join(' ');
      // util-linux's script runs the command on a pseudo-terminal and copies what it shows.
      const { stdout } = await promisify(execFile)('script', ['-qfec', command, '/dev/null'], { cwd: REPO_ROOT });
      expect(stdout).to.contain('\u2588'.repeat(40)).and.match(/succeeded\s+\|[\u2588]+\| 3\/3 images \| [\d.]+\/s \| ETA - \| 0 failed/);
      expect(stdout, 'no plain progress lines').to.not.match(/images, \d+ failed/);
      expect(stdout).to.match(counts(3, 3, 0));
    });
  });
});
