/**
 * Scale-out suite: one gateway, one Redis, one store, and 1, 2, 4, 8 worker processes
 * whose models run on a simulated device (`VISIONQ_BENCH_SIMULATED_DEVICE`: a fixed time
 * per batch, no CPU). Whatever stops throughput from growing with the workers is then the
 * rest of the system: Redis, the gateway, the store, the lister, or the host's CPUs.
 *
 * Each worker count gets its own `source` task over the same prefix of small images; its
 * throughput is read over a steady window of WINDOW_S seconds (after the workers' first
 * chunks) from the workers' own `chunk done` lines, then the task is cancelled. During
 * that window the suite samples Redis (INFO stats, cpu, commandstats), the CPU of every
 * process (/proc/<pid>/stat) and of the host (/proc/stat), and counts store requests.
 *
 * Choices:
 * - A Redis of its own (redis-server on a free loopback port, a key prefix as always): the
 *   ops/s and CPU it reports are this suite's alone, not the other users of the shared one.
 * - The local store, not moto: moto is one Python process that serves a few hundred
 *   requests a second, so it would be the limit measured, and it says nothing about S3,
 *   which scales out. The local store is the single-machine default; its cost lands in
 *   the workers' CPU (one file read per image, one file written per chunk), which is
 *   counted, and its request rate is reported.
 * - A model that declares a 32×32 input (fashion-vgg's labels and normalisation): the
 *   device is simulated, so the model needs no graph; a small input keeps the workers'
 *   preprocessing (decode 28×28 PNG, resize, normalise) small, as the issue asks.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { LocalObjectStore } from '@visionq/object-store';
import { chunkQueueName } from '@visionq/tasks';
import { Cluster, type ServiceProcess } from '../test/support/cluster';
import { freePort } from '../test/support/moto-server';
import { startServerProcess, type ServerProcess } from '../test/support/server-process';
import type { BenchResult } from './main';

const ROOT = join(__dirname, '..');
const FASHION = join(ROOT, 'test', 'fixtures', 'fashion-mnist');
const BUNDLED_FASHION = join(ROOT, 'models', 'fashion-vgg');
const MODEL = 'sim-32';
const INPUT_SIZE = 32;

const WORKER_COUNTS = [1, 2, 4, 8] as const;
/** The simulated device: a batch of BATCH images takes MS_PER_BATCH, about a VGG16-class model on a mid-range GPU. */
const BATCH = 16;
const MS_PER_BATCH = 100;
/** What one worker can do at best: its device busy all the time with full batches. */
const DEVICE_IMAGES_PER_S = (BATCH * 1000) / MS_PER_BATCH;
/** The steady window each worker count is measured over. */
const WINDOW_S = 10;
/**
 * The window opens once this many images per worker are done: each worker has filled its
 * chunks in flight (WORKER_CONCURRENCY 4 × CHUNK_SIZE 64, the defaults) once.
 */
const WARM_IMAGES_PER_WORKER = 256;
/**
 * Objects under the source prefix: more than 8 workers at the device's pace get through
 * in the warm-up, the window and the cancel (checked: a window that runs out fails).
 */
const OBJECTS = 20_000;
const LIST_PAGE = 1000;
const POLL_MS = 200;
/** How long the workers' idle cost is sampled before each task. */
const IDLE_S = 3;
const PHASE_TIMEOUT_MS = 120_000;
/** Below this share of N × (1 worker) a worker count counts as not scaling. */
const SCALING_OK = 0.9;
/** A single-threaded process (Redis, the gateway's event loop) at this share of a core is saturated; so is the host at this share of its cores. */
const SATURATED = 0.85;
/**
 * Past this share of the host's cores needed (visionq's and the other users'), processes
 * wait for a core often enough that a worker's device idles between batches (in this
 * suite's first run, 4 workers needing about 81% of 2 cores kept their devices 81% busy).
 */
const CPU_QUEUEING = 0.75;

const log = (line: string) => process.stderr.write(`${line}\n`);

export async function runScaleBench(): Promise<BenchResult> {
  const cores = availableParallelism();
  const figures: Record<string, number | string> = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores,
    device_ms_per_batch: MS_PER_BATCH,
    batch_size: BATCH,
    device_images_per_s_per_worker: DEVICE_IMAGES_PER_S,
    model_input: `${INPUT_SIZE}x${INPUT_SIZE}`,
    images: '28x28 PNG (Fashion-MNIST fixtures)',
    objects: OBJECTS,
    window_s: WINDOW_S,
    store: 'local',
  };
  const ratios: Record<string, number> = {};

  const scratch = await mkdtemp(join(tmpdir(), 'visionq-bench-scale-'));
  let redis: OwnRedis | undefined;
  let cluster: Cluster | undefined;
  try {
    const modelsDir = join(scratch, 'models');
    await writeSimulatedModel(join(modelsDir, MODEL));
    redis = await startOwnRedis(scratch);
    cluster = await Cluster.start({
      bucket: `vq-scale-${randomBytes(4).toString('hex')}`,
      workers: 0,
      env: {
        REDIS_URL: redis.url,
        MODELS_DIR: modelsDir,
        DEFAULT_MODEL: MODEL,
        VISIONQ_BENCH_SIMULATED_DEVICE: String(MS_PER_BATCH),
        MAX_BATCH_SIZE: String(BATCH),
        LIST_PAGE_SIZE: String(LIST_PAGE),
      },
    });
    log(`gateway up, Redis of its own on ${redis.url} (pid ${redis.pid}), prefix ${cluster.prefix}`);

    let started = Date.now();
    await uploadImages(cluster);
    figures.upload_s = seconds(started);
    log(`${OBJECTS} images in the local store in ${figures.upload_s} s`);
    const listPageMs = await timeListing(cluster);
    figures.list_page_ms = round1(listPageMs);
    // Where one lister would stop: a page every list_page_ms (the local store reads the whole folder for each page).
    figures.lister_ceiling_images_per_s = Math.round(LIST_PAGE / (listPageMs / 1000));
    log(`listing: ${listPageMs.toFixed(1)} ms per page of ${LIST_PAGE} (local store, in this process)`);

    const measured = new Map<number, Window>();
    for (const n of WORKER_COUNTS) {
      started = Date.now();
      while (cluster.workers.length < n) await cluster.addWorker();
      log(`${n} worker(s) ready (${seconds(started)} s to add)`);
      const w = await measureWindow(cluster, redis, n, cores, listPageMs);
      measured.set(n, w);
      record(figures, n, w);
      const one = measured.get(1)!;
      ratios[`w${n}_vs_${n}x_w1`] = round3(w.imagesPerS / (n * one.imagesPerS));
      log(describe(n, w, one));
    }
    ratios.w8_vs_w1 = round3(measured.get(8)!.imagesPerS / measured.get(1)!.imagesPerS);
    figures.goal_w8_vs_w1 = 7.2;
    figures.first_limit = firstLimit(measured);
    log(`8 ÷ 1 = ${ratios.w8_vs_w1} (goal ≥ 7.2); first limit: ${figures.first_limit}`);
    return { suite: 'scale', figures, ratios };
  } catch (err) {
    if (cluster) logTails(cluster);
    throw err;
  } finally {
    await cluster?.stop().catch((err) => log(`cluster stop: ${(err as Error).message}`));
    await redis?.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

/** fashion-vgg's manifest and labels at a 32×32 input, without a graph: the simulated device reads none. */
async function writeSimulatedModel(dir: string): Promise<void> {
  const manifest = JSON.parse(await readFile(join(BUNDLED_FASHION, 'manifest.json'), 'utf8'));
  manifest.name = MODEL;
  manifest.description = `fashion-vgg's contract at ${INPUT_SIZE}x${INPUT_SIZE}, for the simulated device of the scale bench (no graph)`;
  manifest.input.height = INPUT_SIZE;
  manifest.input.width = INPUT_SIZE;
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  await writeFile(join(dir, manifest.labels), await readFile(join(BUNDLED_FASHION, manifest.labels)));
}

interface OwnRedis {
  url: string;
  port: number;
  pid: number;
  client: Redis;
  stop(): Promise<void>;
}

/** redis-server on a free loopback port, no persistence, in `dir`. */
async function startOwnRedis(dir: string): Promise<OwnRedis> {
  const port = await freePort();
  const server: ServerProcess = startServerProcess('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    installHint: 'is redis-server installed (Debian package redis-server)?',
  });
  const url = `redis://127.0.0.1:${port}`;
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  // Refused connections while the server starts are expected; the loop below reports a server that never answers.
  client.on('error', () => undefined);
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if (client.status === 'wait') await client.connect();
      await client.ping();
      break;
    } catch (err) {
      if (server.ended() || Date.now() > deadline) {
        client.disconnect();
        await server.stop();
        throw new Error(`redis-server on port ${port} did not start (${server.ended() ?? (err as Error).message}): ${server.stderr()}`);
      }
      await sleep(100);
    }
  }
  const pid = Number(infoField(await client.info('server'), 'process_id'));
  return {
    url,
    port,
    pid,
    client,
    stop: async () => {
      client.disconnect();
      await server.stop();
    },
  };
}

/** OBJECTS images under `scale/`, image i being fixture i mod n, straight into the local store. */
async function uploadImages(cluster: Cluster): Promise<void> {
  const names = (await readdir(FASHION)).filter((f) => f.endsWith('.png')).sort();
  const files = await Promise.all(names.map((name) => readFile(join(FASHION, name))));
  for (let i = 0; i < OBJECTS; i += 200) {
    const count = Math.min(200, OBJECTS - i);
    await Promise.all(Array.from({ length: count }, (_, j) => cluster.putLocal(`scale/${String(i + j).padStart(6, '0')}.png`, files[(i + j) % files.length]!)));
  }
}

/** Mean time the local store takes to list one page of the prefix, as the worker's lister asks for it. */
async function timeListing(cluster: Cluster): Promise<number> {
  const store = new LocalObjectStore(cluster.dataDir);
  let cursor: string | null = null;
  let pages = 0;
  const started = performance.now();
  do {
    const page = await store.list(`s3://${cluster.bucket}/scale/`, { cursor, limit: LIST_PAGE });
    cursor = page.nextCursor;
    pages++;
  } while (cursor !== null);
  return (performance.now() - started) / pages;
}

/** What one worker count did over its window, and what it cost. */
interface Window {
  imagesPerS: number;
  /** N × DEVICE_IMAGES_PER_S: every device busy with full batches. */
  idealPerS: number;
  seconds: number;
  /** The sampled window's length: what the CPU and Redis rates are over. */
  wall: number;
  images: number;
  chunks: number;
  pagesListed: number;
  /** From the submit to the last page listed, or undefined if listing outlasted the window. */
  listingS?: number;
  redisOpsPerS: number;
  redisInstantaneousOps: number;
  redisCpuCore: number;
  redisTopCommands: string;
  gatewayCpuCore: number;
  workersCpuCores: number;
  /** The same workers' CPU with no task, just before it. */
  workersIdleCores: number;
  busiestWorkerCpuCore: number;
  benchCpuCore: number;
  hostBusyCores: number;
  /** Host busy cores not spent by this suite's processes: the machine's other users. */
  otherCores: number;
  listerBusy: number;
  limit: string;
}

interface Sample {
  at: number;
  redis: RedisSample;
  cpu: Map<string, number>;
  host: { busy: number; total: number };
  bench: NodeJS.CpuUsage;
}

interface RedisSample {
  commands: number;
  cpu: number;
  commandCalls: Map<string, number>;
  instantaneous: number;
}

/**
 * Submits a task over the whole prefix, waits for the workers' first chunks, samples,
 * lets WINDOW_S pass, samples again, cancels the task and waits until the queue is idle.
 */
async function measureWindow(cluster: Cluster, redis: OwnRedis, n: number, cores: number, listPageMs: number): Promise<Window> {
  // What the workers cost doing nothing (heartbeats, stalled-job checks, polling), so the per-image cost can be told apart.
  const idleFrom = await sample(cluster, redis);
  await sleep(IDLE_S * 1000);
  const idleTo = await sample(cluster, redis);
  const idleWall = (idleTo.at - idleFrom.at) / 1000;
  const workersIdleCores = cluster.workers.reduce((sum, w) => sum + ((idleTo.cpu.get(w.name) ?? 0) - (idleFrom.cpu.get(w.name) ?? 0)), 0) / idleWall;

  const submittedAt = Date.now();
  const submit = await cluster.request('POST', '/batch_predict', { source: `s3://${cluster.bucket}/scale/`, top_k: 1 });
  if (submit.status !== 202) throw new Error(`POST /batch_predict: ${submit.status} ${JSON.stringify(submit.body)}`);
  const taskId: string = submit.body.task_id;

  await until(`${n} worker(s) past warm-up`, async () => (await progress(cluster, taskId)).done >= WARM_IMAGES_PER_WORKER * n);
  const before = await sample(cluster, redis);
  await sleep(WINDOW_S * 1000);
  const after = await sample(cluster, redis);

  const cancel = await cluster.request('DELETE', `/tasks/${taskId}`);
  if (cancel.status !== 200 && cancel.status !== 202) throw new Error(`DELETE /tasks/${taskId}: ${cancel.status} ${JSON.stringify(cancel.body)}`);
  const ended = await progress(cluster, taskId);
  if (ended.done >= OBJECTS || ended.status === 'succeeded') throw new Error(`${n} worker(s) ran out of the ${OBJECTS} objects before the window closed: raise OBJECTS`);
  await queueIdle(redis, cluster.prefix);

  const chunkLines = cluster.workers.flatMap((w) => Cluster.lines(w, 'chunk done')).filter((l) => l.task_id === taskId);
  const { imagesPerS, seconds, images, chunks } = chunkRate(chunkLines, before.at, after.at);
  const pageLines = cluster.workers.flatMap((w) => Cluster.lines(w, 'source page listed')).filter((l) => l.task_id === taskId);
  const lastPage = pageLines.find((l) => l.last === true);
  const pagesListed = pageLines.filter((l) => inWindow(l, before.at, after.at)).length;

  const wall = (after.at - before.at) / 1000;
  const cpuOf = (name: string) => ((after.cpu.get(name) ?? 0) - (before.cpu.get(name) ?? 0)) / wall;
  const workerCores = cluster.workers.map((w) => cpuOf(w.name));
  const bench = (after.bench.user - before.bench.user + after.bench.system - before.bench.system) / 1e6 / wall;
  const hostBusyCores = ((after.host.busy - before.host.busy) / (after.host.total - before.host.total)) * cores;
  const redisCpuCore = (after.redis.cpu - before.redis.cpu) / wall;
  const gatewayCpuCore = cpuOf('gateway');
  const workersCpuCores = workerCores.reduce((a, b) => a + b, 0);
  const ours = redisCpuCore + gatewayCpuCore + workersCpuCores + bench;
  const w: Window = {
    imagesPerS,
    idealPerS: n * DEVICE_IMAGES_PER_S,
    seconds,
    wall,
    images,
    chunks,
    pagesListed,
    listingS: lastPage ? (Date.parse(String(lastPage.timestamp)) - submittedAt) / 1000 : undefined,
    redisOpsPerS: (after.redis.commands - before.redis.commands) / wall,
    redisInstantaneousOps: after.redis.instantaneous,
    redisCpuCore,
    redisTopCommands: topCommands(before.redis, after.redis, wall, 4),
    gatewayCpuCore,
    workersCpuCores,
    workersIdleCores,
    busiestWorkerCpuCore: Math.max(...workerCores),
    benchCpuCore: bench,
    hostBusyCores,
    otherCores: Math.max(0, hostBusyCores - ours),
    // The lister's share of the time at this pace: pages needed per second × time per page.
    listerBusy: (imagesPerS / LIST_PAGE) * (listPageMs / 1000),
    limit: '',
  };
  w.limit = limitOf(w, cores);
  return w;
}

/**
 * Images per second from the workers' own `chunk done` lines (ms timestamps) inside the
 * window: the images of every chunk after the first, over the time from the first to the
 * last. Exact at chunk boundaries, where progress polling would round to them.
 */
function chunkRate(lines: Array<Record<string, unknown>>, from: number, to: number) {
  const inside = lines
    .filter((l) => inWindow(l, from, to))
    .map((l) => ({ at: Date.parse(String(l.timestamp)), images: Number(l.images) }))
    .sort((a, b) => a.at - b.at);
  if (inside.length < 3) throw new Error(`only ${inside.length} chunks ended in the ${WINDOW_S} s window: the workers did not run`);
  const seconds = (inside.at(-1)!.at - inside[0]!.at) / 1000;
  const images = inside.slice(1).reduce((sum, c) => sum + c.images, 0);
  return { imagesPerS: images / seconds, seconds, images, chunks: inside.length };
}

function inWindow(line: Record<string, unknown>, from: number, to: number): boolean {
  const at = Date.parse(String(line.timestamp));
  return at >= from && at <= to;
}

/**
 * Cores this suite's processes would need at the device-bound pace: the workers' CPU per
 * image at that pace (their idle cost kept as it is), plus what Redis, the gateway and the
 * bench took in the window. The machine's other users come on top.
 */
function coresNeeded(w: Window): number {
  const perImage = (w.workersCpuCores - w.workersIdleCores) / w.imagesPerS;
  return w.workersIdleCores + perImage * w.idealPerS + w.redisCpuCore + w.gatewayCpuCore + w.benchCpuCore;
}

/**
 * What held a worker count back, first match wins: nothing (it scales), the lister, Redis
 * or the gateway saturating their one thread, the host's CPUs (busy, or needed at the
 * device-bound pace beyond what a shared machine gives without queueing), else the
 * devices were not kept busy for another reason (latency between stages).
 */
function limitOf(w: Window, cores: number): string {
  const efficiency = w.imagesPerS / w.idealPerS;
  const n = w.idealPerS / DEVICE_IMAGES_PER_S;
  if (efficiency >= SCALING_OK) return `none: devices ${pct(efficiency)} busy`;
  if (w.listerBusy >= SATURATED) return `lister: ${pct(w.listerBusy)} of its time listing`;
  if (w.redisCpuCore >= SATURATED) return `Redis: ${pct(w.redisCpuCore)} of its core at ${Math.round(w.redisOpsPerS)} ops/s`;
  if (w.gatewayCpuCore >= SATURATED) return `gateway: ${pct(w.gatewayCpuCore)} of its core`;
  const needed = coresNeeded(w);
  if (w.hostBusyCores >= SATURATED * cores || needed + w.otherCores >= CPU_QUEUEING * cores) {
    const users = [
      [`${n} worker(s)`, w.workersCpuCores],
      ['Redis', w.redisCpuCore],
      ['gateway', w.gatewayCpuCore],
      ['bench', w.benchCpuCore],
      ['other users of the host', w.otherCores],
    ] as const;
    const shares = users.map(([who, c]) => `${who} ${c.toFixed(2)}`).join(', ');
    const perImage = ((w.workersCpuCores - w.workersIdleCores) / w.imagesPerS) * 1000;
    return (
      `host CPU: ${w.hostBusyCores.toFixed(2)} of ${cores} cores busy (${shares}); ` +
      `${w.idealPerS} images/s would need ${needed.toFixed(2)} cores for visionq (workers ${perImage.toFixed(2)} ms CPU per image) + ${w.otherCores.toFixed(2)} for the other users`
    );
  }
  return `devices ${pct(efficiency)} busy with CPU to spare (${w.hostBusyCores.toFixed(2)} of ${cores} cores busy, ${(needed + w.otherCores).toFixed(2)} needed): images do not reach them fast enough`;
}

/** The first worker count that stopped scaling, and why; or that none did. */
function firstLimit(measured: Map<number, Window>): string {
  const one = measured.get(1)!;
  for (const [n, w] of measured) {
    const scaling = w.imagesPerS / (n * one.imagesPerS);
    if (scaling < SCALING_OK || w.imagesPerS < SCALING_OK * w.idealPerS) {
      return `at ${n} worker(s), ${round1(w.imagesPerS)} images/s = ${pct(scaling)} of ${n} × 1 worker: ${w.limit}`;
    }
  }
  return `none up to ${WORKER_COUNTS.at(-1)} workers: ${measured.get(WORKER_COUNTS.at(-1)!)!.limit}`;
}

function record(figures: Record<string, number | string>, n: number, w: Window): void {
  const p = `w${n}_`;
  figures[`${p}images_per_s`] = round1(w.imagesPerS);
  figures[`${p}device_bound_images_per_s`] = w.idealPerS;
  figures[`${p}window_images`] = w.images;
  figures[`${p}window_chunks`] = w.chunks;
  figures[`${p}redis_ops_per_s`] = Math.round(w.redisOpsPerS);
  figures[`${p}redis_instantaneous_ops_per_sec`] = w.redisInstantaneousOps;
  figures[`${p}redis_commands_per_image`] = round1(w.redisOpsPerS / w.imagesPerS);
  figures[`${p}redis_cpu_core`] = round3(w.redisCpuCore);
  // Where Redis would stop: its one core full at this many commands per image.
  if (w.redisCpuCore > 0) figures[`${p}redis_ceiling_images_per_s`] = Math.round(w.imagesPerS / w.redisCpuCore);
  figures[`${p}redis_top_commands_per_s`] = w.redisTopCommands;
  figures[`${p}gateway_cpu_core`] = round3(w.gatewayCpuCore);
  figures[`${p}workers_cpu_cores`] = round3(w.workersCpuCores);
  figures[`${p}busiest_worker_cpu_core`] = round3(w.busiestWorkerCpuCore);
  figures[`${p}workers_idle_cpu_cores`] = round3(w.workersIdleCores);
  figures[`${p}worker_cpu_ms_per_image`] = round3((w.workersCpuCores / w.imagesPerS) * 1000);
  figures[`${p}cores_needed_device_bound`] = round3(coresNeeded(w));
  figures[`${p}bench_cpu_core`] = round3(w.benchCpuCore);
  figures[`${p}host_busy_cores`] = round3(w.hostBusyCores);
  figures[`${p}other_users_cores`] = round3(w.otherCores);
  // One GET per image, one result part PUT per chunk, one LIST per page.
  figures[`${p}store_gets_per_s`] = round1(w.imagesPerS);
  figures[`${p}store_puts_per_s`] = round1(w.chunks / w.seconds);
  figures[`${p}store_lists_per_s`] = round3(w.pagesListed / w.wall);
  figures[`${p}lister_busy`] = round3(w.listerBusy);
  if (w.listingS !== undefined) figures[`${p}listing_s`] = round3(w.listingS);
  figures[`${p}limit`] = w.limit;
}

function describe(n: number, w: Window, one: Window): string {
  return (
    `  ${n} worker(s): ${w.imagesPerS.toFixed(1)} images/s (device-bound ${w.idealPerS}, ${pct(w.imagesPerS / (n * one.imagesPerS))} of ${n} × 1 worker); ` +
    `Redis ${Math.round(w.redisOpsPerS)} ops/s, ${pct(w.redisCpuCore)} of a core; gateway ${pct(w.gatewayCpuCore)}; workers ${w.workersCpuCores.toFixed(2)} cores (${w.workersIdleCores.toFixed(2)} idle); ` +
    `host ${w.hostBusyCores.toFixed(2)} cores busy (others ${w.otherCores.toFixed(2)}); lister ${pct(w.listerBusy)} → ${w.limit}`
  );
}

async function sample(cluster: Cluster, redis: OwnRedis): Promise<Sample> {
  const info = await redis.client.info('all');
  const cpu = new Map<string, number>();
  for (const service of [cluster.gateway, ...cluster.workers] as ServiceProcess[]) cpu.set(service.name, cpuSeconds(service.child.pid!) ?? NaN);
  return { at: Date.now(), redis: redisSample(info), cpu, host: hostCpu(), bench: process.cpuUsage() };
}

function redisSample(info: string): RedisSample {
  const commandCalls = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) commandCalls.set(match[1]!, Number(match[2]));
  return {
    commands: Number(infoField(info, 'total_commands_processed')),
    cpu: Number(infoField(info, 'used_cpu_user')) + Number(infoField(info, 'used_cpu_sys')),
    commandCalls,
    instantaneous: Number(infoField(info, 'instantaneous_ops_per_sec')),
  };
}

/** The `k` commands called most in the window, as `name rate/s`. */
function topCommands(before: RedisSample, after: RedisSample, wall: number, k: number): string {
  return [...after.commandCalls]
    .map(([name, calls]) => [name, (calls - (before.commandCalls.get(name) ?? 0)) / wall] as const)
    .sort((a, b) => b[1] - a[1])
    .slice(0, k)
    .map(([name, rate]) => `${name} ${Math.round(rate)}`)
    .join(', ');
}

function infoField(info: string, field: string): string {
  const match = new RegExp(`^${field}:(.*)$`, 'm').exec(info);
  if (!match) throw new Error(`Redis INFO has no ${field}`);
  return match[1]!.trim();
}

/** User + system CPU seconds of a process so far, every thread (Linux), or undefined once it is gone. */
function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return undefined;
  }
}

/** The host's busy and total jiffies over every CPU (/proc/stat's first line). */
function hostCpu(): { busy: number; total: number } {
  const values = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = values.slice(0, 8).reduce((a, b) => a + b, 0); // user … steal; guest time is already in user
  const idle = values[3]! + values[4]!; // idle, iowait
  return { busy: total - idle, total };
}

async function progress(cluster: Cluster, taskId: string): Promise<{ status: string; done: number }> {
  const { status, body } = await cluster.request('GET', `/tasks/${taskId}`);
  if (status !== 200) throw new Error(`GET /tasks/${taskId}: ${status} ${JSON.stringify(body)}`);
  if (body.status === 'failed') throw new Error(`task ${taskId} failed: ${JSON.stringify(body.error ?? null)}`);
  return { status: body.status, done: body.progress.done };
}

/** Waits until the model's queue holds nothing waiting or running: the cancelled task's jobs are all dropped. */
async function queueIdle(redis: OwnRedis, prefix: string): Promise<void> {
  const queue = new Queue(chunkQueueName(`${MODEL}@1`), { connection: { host: '127.0.0.1', port: redis.port }, prefix });
  try {
    await until('the cancelled task to drain', async () => {
      const counts = await queue.getJobCounts('wait', 'prioritized', 'delayed', 'active');
      return Object.values(counts).every((c) => c === 0);
    });
  } finally {
    await queue.close();
  }
}

async function until(what: string, done: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + PHASE_TIMEOUT_MS;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(POLL_MS);
  }
}

/** Each process's exit status and last log lines, to stderr: what a failed run needs to be read. */
function logTails(cluster: Cluster): void {
  for (const service of [cluster.gateway, ...cluster.workers].filter(Boolean)) {
    const { exitCode, signalCode } = service.child;
    log(`--- ${service.name} (${exitCode === null && signalCode === null ? 'running' : `exited ${exitCode ?? signalCode}`}), last log lines:`);
    for (const line of service.logs.slice(-10)) log(JSON.stringify(line));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const seconds = (since: number) => round3((Date.now() - since) / 1000);
const pct = (x: number) => `${Math.round(x * 100)}%`;
const round1 = (n: number) => Math.round(n * 10) / 10;
const round3 = (n: number) => Math.round(n * 1000) / 1000;
