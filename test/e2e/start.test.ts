import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ANKLE_BOOT_PNG, BUNDLED_MODELS_DIR, REPO_ROOT } from '../support/model-fixtures';
import { freePort } from '../support/moto-server';
import { deleteKeys } from '../support/redis-keys';

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** `npm start` as a user runs it (`node scripts/start.js`), with `env` over the embedded defaults. */
function npmStart(env: Record<string, string>): Started {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'scripts', 'start.js')], {
    cwd: REPO_ROOT,
    env: { ...process.env, MODELS_DIR: BUNDLED_MODELS_DIR, WARMUP: 'false', INTRA_OP_THREADS: '1', WORKER_METRICS_PORT: '0', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => (output += text));
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (output += text));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function ready(port: number, started: Started): Promise<void> {
  for (let i = 0; i < 600 && started.child.exitCode === null; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null);
    if (res?.ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`npm start did not get ready:\n${started.output()}`);
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(true));
  });
}

describe('npm start, one command (whole processes)', function () {
  this.timeout(120_000);
  let dataDir: string;

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'vq-start-'));
  });

  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('starts its own Redis when nothing answers at a loopback REDIS_URL, serves on it, and stops it after the others', async () => {
    const [redisPort, port] = [await freePort(), await freePort()];
    const started = npmStart({ REDIS_URL: `redis://127.0.0.1:${redisPort}`, DATA_DIR: dataDir, PORT: String(port) });
    try {
      await ready(port, started);
      expect(started.output()).to.include(`started its own Redis on 127.0.0.1:${redisPort}`);
      expect(existsSync(join(dataDir, 'redis', 'appendonlydir')), 'its append-only file').to.equal(true);
      const form = new FormData();
      form.append('file', new Blob([await readFile(ANKLE_BOOT_PNG)]), 'boot.png');
      const predicted = await fetch(`http://127.0.0.1:${port}/predict`, { method: 'POST', body: form });
      expect(predicted.status).to.equal(200);
      expect(((await predicted.json()) as { predictions: Array<{ label: string }> }).predictions[0]!.label).to.equal('Ankle boot');
    } finally {
      started.child.kill('SIGINT');
    }
    expect(await started.exited).to.equal(0);
    expect(await refused(redisPort), 'its Redis is gone').to.equal(true);
    expect(started.output()).to.not.match(/did not take the quit/);
  });

  it('uses the Redis that answers at REDIS_URL, starting none', async () => {
    const port = await freePort();
    const prefix = `vq-start-${randomBytes(4).toString('hex')}`;
    const started = npmStart({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_PREFIX: prefix, DATA_DIR: dataDir, PORT: String(port) });
    try {
      await ready(port, started);
      expect(started.output()).to.not.include('started its own Redis');
      expect(existsSync(join(dataDir, 'redis'))).to.equal(false);
    } finally {
      started.child.kill('SIGINT');
      await started.exited;
      const redis = new Redis('redis://127.0.0.1:6379');
      await deleteKeys(redis, `${prefix}:*`);
      redis.disconnect();
    }
  });

  it('says in one line what to do when nothing answers and redis-server is not installed', async () => {
    const redisPort = await freePort();
    // A PATH with node alone (node's own folder may hold redis-server too): none to start.
    const bin = join(dataDir, 'bin');
    await mkdir(bin);
    await symlink(process.execPath, join(bin, 'node'));
    const started = npmStart({ REDIS_URL: `redis://127.0.0.1:${redisPort}`, DATA_DIR: dataDir, PATH: bin });
    const exited = await Promise.race([started.exited, new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 30_000))]);
    if (exited === 'running') started.child.kill('SIGINT');
    expect(exited, started.output()).to.equal(69);
    const lines = started.output().trim().split('\n');
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(/^visionq: nothing answers at REDIS_URL=redis:\/\/127\.0\.0\.1:\d+, and redis-server is not installed to start one: install it \(apt-get install redis-server\)/);
  });
});
