import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { randomUUID } from 'node:crypto';
import { dirname, join } from 'node:path';
import { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import { chunkQueueName, predictQueueName } from '@visionq/tasks';
import { BUNDLED_MODELS_DIR, REPO_ROOT } from './model-fixtures';
import { freePort, type MotoServer } from './moto-server';
import { deleteKeys, scanKeys } from './redis-keys';

/** One gateway or worker process, with its log lines kept for assertions. */
export interface ServiceProcess {
  name: string;
  child: ChildProcess;
  /** Parsed JSON log lines, in order. */
  logs: Array<Record<string, unknown>>;
  exited: Promise<number | null>;
}

export interface ClusterOptions {
  /** The S3 server every process uses; without one they use a local store in a folder of the cluster's own (`dataDir`). */
  moto?: MotoServer;
  bucket: string;
  workers: number;
  /** Extra configuration for every process. */
  env?: Record<string, string>;
}

export interface HttpReply<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

const START_TIMEOUT_MS = 60_000;

/**
 * A whole visionq on loopback: one gateway and N worker processes on real Redis (a key
 * prefix of their own) and a real S3 server (moto), serving the bundled model. Each
 * process is the app's built `dist/main.js`, as `npm run gateway` / `npm run worker` run it.
 */
export class Cluster {
  readonly prefix = `vq-e2e-${randomUUID().slice(0, 8)}`;
  readonly workers: ServiceProcess[] = [];
  gateway!: ServiceProcess;
  /** Gateways beyond the first, sharing its Redis and store. */
  readonly moreGateways: ServiceProcess[] = [];
  url = '';
  /** The local store's root, made for this cluster and removed by `stop()`; empty with an S3 server. */
  dataDir = '';
  bucket = '';
  private env: Record<string, string> = {};

  private constructor() {}

  static async start(options: ClusterOptions): Promise<Cluster> {
    const cluster = new Cluster();
    const port = await freePort();
    cluster.url = `http://127.0.0.1:${port}`;
    cluster.bucket = options.bucket;
    if (!options.moto) cluster.dataDir = await mkdtemp(join(tmpdir(), `${cluster.prefix}-data-`));
    cluster.env = {
      PORT: String(port),
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_PREFIX: cluster.prefix,
      ...(options.moto
        ? { STORE: 's3', S3_ENDPOINT: options.moto.endpoint, S3_FORCE_PATH_STYLE: 'true', S3_ACCESS_KEY_ID: 'test', S3_SECRET_ACCESS_KEY: 'test' }
        : { STORE: 'local', DATA_DIR: cluster.dataDir }),
      ALLOWED_BUCKETS: options.bucket,
      UPLOADS_URI: `s3://${options.bucket}/uploads/`,
      RESULTS_URI: `s3://${options.bucket}/results/`,
      MODELS_DIR: BUNDLED_MODELS_DIR,
      WARMUP: 'false',
      // Two workers share two cores, and one host: no metrics port each.
      INTRA_OP_THREADS: '1',
      WORKER_METRICS_PORT: '0',
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'json',
      ...options.env,
    };
    try {
      cluster.gateway = cluster.spawn('gateway');
      await cluster.waitFor(cluster.gateway, async () => (await fetch(`${cluster.url}/healthz`).catch(() => null))?.ok === true);
      for (let i = 0; i < options.workers; i++) await cluster.addWorker();
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** Starts one more gateway replica on a port of its own; resolves to its base URL. */
  async addGateway(): Promise<string> {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const gateway = this.spawn(`gateway-${this.moreGateways.length + 1}`, { PORT: String(port) });
    this.moreGateways.push(gateway);
    await this.waitFor(gateway, async () => (await fetch(`${url}/healthz`).catch(() => null))?.ok === true);
    return url;
  }

  /** Starts one more worker replica and waits until it takes work. */
  async addWorker(): Promise<ServiceProcess> {
    const worker = this.spawn(`worker-${this.workers.length}`);
    this.workers.push(worker);
    await this.waitFor(worker, async () => worker.logs.some((l) => l.message === 'worker ready'));
    return worker;
  }

  /**
   * Descriptors of the first gateway that a request can hold (Linux): files, and client
   * connections accepted on its port. Its own outgoing connections (Redis, the store) open
   * and close on their own schedule, so they are left out: counting them made a leak check
   * depend on when a background reconnect happened.
   */
  gatewayFds(): number {
    return this.gatewayFdTargets().length;
  }

  /** What `gatewayFds` counts: file paths, and `socket:[inode]` of accepted connections. */
  gatewayFdTargets(): string[] {
    const pid = this.gateway.child.pid;
    const port = Number(new URL(this.url).port);
    const accepted = acceptedSocketInodes(pid!, port);
    const targets: string[] = [];
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue; // closed while listed
      }
      const socket = /^socket:\[(\d+)\]$/.exec(target);
      if (socket ? accepted.has(socket[1]!) : target.startsWith('/')) targets.push(target);
    }
    return targets;
  }

  /** Log lines `message` of one process. */
  static lines(service: ServiceProcess, message: string): Array<Record<string, unknown>> {
    return service.logs.filter((l) => l.message === message);
  }

  /** One request to the first gateway (or `base`, another's URL). */
  async request<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, base = this.url): Promise<HttpReply<T>> {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body instanceof FormData) init.body = body;
    else if (typeof body === 'string') init.body = body;
    else if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] = 'application/json';
    }
    const res = await fetch(`${base}${path}`, init);
    const text = await res.text();
    const type = res.headers.get('content-type') ?? '';
    return { status: res.status, headers: res.headers, body: (type.includes('application/json') ? JSON.parse(text) : text) as T };
  }

  /** Polls a task until it ends; fails after `timeoutMs`. `headers` carry a key where the gateway wants one. */
  async waitForTask(taskId: string, timeoutMs = 120_000, headers: Record<string, string> = {}): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { status, body } = await this.request('GET', `/tasks/${taskId}`, undefined, headers);
      if (status !== 200) throw new Error(`GET /tasks/${taskId}: ${status} ${JSON.stringify(body)}`);
      if (['succeeded', 'completed_with_errors', 'failed', 'cancelled'].includes(body.status)) return body;
      if (Date.now() > deadline) throw new Error(`task ${taskId} still ${body.status} after ${timeoutMs} ms: ${JSON.stringify(body.progress)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Every result line of a task, through the paginated API. */
  async allResults(taskId: string, limit = 1000): Promise<any[]> {
    const results: any[] = [];
    let cursor: string | null = null;
    do {
      const query: string = `limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const { status, body } = await this.request('GET', `/tasks/${taskId}/results?${query}`);
      if (status !== 200) throw new Error(`results: ${status} ${JSON.stringify(body)}`);
      results.push(...body.results);
      cursor = body.next_cursor;
    } while (cursor);
    return results;
  }

  /** Task records and jobs under this cluster's prefix: what a refused request must not add to. */
  async footprint(model = 'fashion-vgg@1'): Promise<{ tasks: number; jobs: number }> {
    const redis = new Redis('redis://127.0.0.1:6379');
    try {
      const tasks = (await scanKeys(redis, `${this.prefix}:task:*`)).filter((k) => k.split(':').length === 3).length;
      let jobs = 0;
      for (const name of [chunkQueueName(model), predictQueueName(model)]) {
        const queue = new Queue(name, { connection: redis, prefix: this.prefix });
        const counts = await queue.getJobCounts();
        jobs += Object.values(counts).reduce((a, b) => a + b, 0);
        await queue.close();
      }
      return { tasks, jobs };
    } finally {
      redis.disconnect();
    }
  }

  /** Waits until the model version's queues hold no job waiting, delayed or running: every job taken has ended. */
  async queuesSettled(model = 'fashion-vgg@1', timeoutMs = 120_000): Promise<void> {
    const redis = new Redis('redis://127.0.0.1:6379');
    const queues = [chunkQueueName(model), predictQueueName(model)].map((name) => new Queue(name, { connection: redis, prefix: this.prefix }));
    try {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const counts = await Promise.all(queues.map((q) => q.getJobCounts('wait', 'prioritized', 'delayed', 'active', 'waiting-children')));
        if (counts.every((c) => Object.values(c).every((n) => n === 0))) return;
        if (Date.now() > deadline) throw new Error(`queues of ${model} still busy after ${timeoutMs} ms: ${JSON.stringify(counts)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      await Promise.all(queues.map((q) => q.close()));
      redis.disconnect();
    }
  }

  /** Writes an object of the cluster's bucket straight into its local store. */
  async putLocal(key: string, bytes: Buffer): Promise<string> {
    const path = join(this.dataDir, this.bucket, ...key.split('/'));
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, bytes);
    return `s3://${this.bucket}/${key}`;
  }

  /** Stops every process (SIGTERM, then SIGKILL), deletes this cluster's keys and its local store. */
  async stop(): Promise<void> {
    await Promise.all([this.gateway, ...this.moreGateways, ...this.workers].filter(Boolean).map((p) => stopProcess(p)));
    if (this.dataDir) await rm(this.dataDir, { recursive: true, force: true });
    const redis = new Redis('redis://127.0.0.1:6379');
    try {
      await deleteKeys(redis, `${this.prefix}:*`);
    } finally {
      redis.disconnect();
    }
  }

  private spawn(name: string, env: Record<string, string> = {}): ServiceProcess {
    const app = name.startsWith('gateway') ? 'gateway' : 'worker';
    const child = spawn(process.execPath, [join(REPO_ROOT, 'apps', app, 'dist', 'main.js')], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...this.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const logs: Array<Record<string, unknown>> = [];
    let partial = '';
    child.stderr!.setEncoding('utf8').on('data', (text: string) => {
      const lines = (partial + text).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        try {
          logs.push(JSON.parse(line));
        } catch {
          logs.push({ message: line });
        }
      }
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);
    void exited.then(() => process.removeListener('exit', killOnExit));
    return { name, child, logs, exited };
  }

  private async waitFor(service: ServiceProcess, ready: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await ready())) {
      if (service.child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`${service.name} did not start:\n${service.logs.map((l) => JSON.stringify(l)).join('\n')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function stopProcess(service: ServiceProcess): Promise<void> {
  if (service.child.exitCode !== null || service.child.signalCode !== null) return;
  service.child.kill('SIGTERM');
  const timer = setTimeout(() => service.child.kill('SIGKILL'), 15_000);
  await service.exited;
  clearTimeout(timer);
}

/** Inodes of the TCP sockets of `pid` whose local port is `port`, the listening one excepted. */
function acceptedSocketInodes(pid: number, port: number): Set<string> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['tcp', 'tcp6']) {
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // local_address is HEXIP:HEXPORT; state 0A is LISTEN; the inode is the tenth column.
      if (cols.length > 9 && cols[1]!.endsWith(`:${hexPort}`) && cols[3] !== '0A') inodes.add(cols[9]!);
    }
  }
  return inodes;
}
