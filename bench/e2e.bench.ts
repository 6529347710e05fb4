/**
 * End-to-end suite: images in an S3 server (moto), through `POST /batch_predict` on a
 * real gateway, Redis queue and one worker process, against raw `session.run` in this
 * process on the same model, batch size, thread settings and images (preprocessed before
 * the clock starts). VGG16 fp32, VGG16 INT8 and the bundled fashion-vgg, each also against
 * preprocessing alone on every core; then submits per second of 10-image tasks with no
 * worker running.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadConfig } from '@visionq/config';
import { ImagePreprocessor, writeNormalized, type PreprocessedImage } from '@visionq/imaging';
import { onnxSessionOptions, type SessionSettings } from '@visionq/inference';
import { readModelFolder, type ModelFolder } from '@visionq/models';
import type { S3ObjectStore } from '@visionq/object-store';
import { quantizeVgg, writeVggModelFolder } from '@visionq/vgg-builder';
import { Cluster } from '../test/support/cluster';
import { createBucket, motoStore, startMotoServer, type MotoServer } from '../test/support/moto-server';
import type { BenchResult } from './main';

const ROOT = join(__dirname, '..');
const PHOTOS = join(ROOT, 'test', 'fixtures', 'photos');
const FASHION = join(ROOT, 'test', 'fixtures', 'fashion-mnist');
const BUNDLED_FASHION = join(ROOT, 'models', 'fashion-vgg');

/** The worker's batch size, and raw's. */
const BATCH = 16;
/**
 * The worker's settings that matter here: all cores for onnxruntime (INTRA_OP_THREADS=0
 * resolves to one thread per available CPU, as for the raw session below), warm-up on,
 * batches of 16. Everything else is the service's default (chunk size, concurrency, delay).
 */
const WORKER_ENV = { INTRA_OP_THREADS: '0', WARMUP: 'true', MAX_BATCH_SIZE: String(BATCH), DEFAULT_MODEL: 'fashion-vgg' };
/**
 * What the worker's engine gets from INTRA_OP_THREADS=0 and the defaults of the other
 * settings, on the providers of EXECUTION_PROVIDERS (`cpu` unless set; `npm run gpu-check`
 * sets `cuda`), which the worker processes inherit too. Raw asks onnxruntime for them
 * directly: a provider that cannot load fails the run instead of falling back.
 */
function rawSettings(): SessionSettings {
  const { providers, deviceId } = loadConfig().inference;
  return { providers, deviceId, intraOpThreads: 0, interOpThreads: 0, graphOptimization: 'all' };
}
/** Per model: images per round (a multiple of BATCH) and rounds. VGG16 runs ~5 images/s here, its INT8 ~3× that. */
const PLAN = {
  vgg16: { images: 96, rounds: 4 },
  vgg16_int8: { images: 192, rounds: 4 },
  fashion: { images: 800, rounds: 5 },
} as const;
/**
 * Polling is only how the bench learns a task has ended; the time is read from the task's
 * own `finished_at` (same clock), so polling can be slow and take no CPU from the run.
 */
const POLL_MS = 250;
const TASK_TIMEOUT_MS = 300_000;
const SUBMITS = 300;
const SUBMIT_IMAGES = 10;
const SUBMITS_IN_FLIGHT = 8;

const log = (line: string) => process.stderr.write(`${line}\n`);

interface Bench {
  /** Name in figures and ratios. */
  key: keyof typeof PLAN;
  model: string;
  folder: ModelFolder;
  /** Image i of a round is `uris[i]` end to end and `images[i % images.length]` raw. */
  uris: string[];
  images: PreprocessedImage[];
  /** The distinct files' bytes: what the raw path with preprocessing decodes, image i being files[i mod n]. */
  files: Buffer[];
}

export async function runE2eBench(): Promise<BenchResult> {
  const figures: Record<string, number | string> = {};
  const ratios: Record<string, number> = {};
  figures.cpu = cpus()[0]?.model ?? 'unknown';
  figures.cores = cpus().length;
  figures.batch_size = BATCH;
  const settings = rawSettings();
  figures.providers = settings.providers.join(',');
  figures.intra_op_threads = onnxSessionOptions(settings).intraOpNumThreads!;

  const scratch = await mkdtemp(join(tmpdir(), 'visionq-bench-e2e-'));
  let moto: MotoServer | undefined;
  let store: S3ObjectStore | undefined;
  let cluster: Cluster | undefined;
  try {
    const modelsDir = join(scratch, 'models');
    let started = Date.now();
    await writeVggModelFolder(join(modelsDir, 'vgg16'), { depth: 16, seed: 0, name: 'vgg16' });
    await cp(BUNDLED_FASHION, join(modelsDir, 'fashion-vgg'), { recursive: true });
    figures.vgg16_build_s = seconds(started);
    log(`built VGG16 fp32 in ${figures.vgg16_build_s} s`);

    moto = await startMotoServer();
    const bucket = `vq-bench-${randomBytes(4).toString('hex')}`;
    await createBucket(moto, bucket);
    store = motoStore(moto);
    started = Date.now();
    const photos = await sourceFiles(PHOTOS);
    const fashion = await sourceFiles(FASHION);
    const vgg16 = await prepare(store, bucket, 'vgg16', 'vgg16', join(modelsDir, 'vgg16'), photos);
    log(`uploaded ${vgg16.uris.length} images in ${seconds(started)} s`);
    // INT8 VGG16, calibrated on the same photos the way `build-vgg --int8` does it.
    started = Date.now();
    const size = 3 * vgg16.folder.spec.height * vgg16.folder.spec.width;
    const calibration = vgg16.images.map((image) => {
      const tensor = new Float32Array(size);
      writeNormalized(image, vgg16.folder.spec, tensor, 0);
      return tensor;
    });
    const int8 = await quantizeVgg(await readFile(vgg16.folder.modelPath), calibration);
    await writeVggModelFolder(join(modelsDir, 'vgg16-int8'), { depth: 16, seed: 0, name: 'vgg16-int8', model: int8 });
    figures.vgg16_int8_quantize_s = seconds(started);
    log(`quantized VGG16 to INT8 in ${figures.vgg16_int8_quantize_s} s`);
    const benches: Bench[] = [
      vgg16,
      await prepare(store, bucket, 'vgg16_int8', 'vgg16-int8', join(modelsDir, 'vgg16-int8'), photos),
      await prepare(store, bucket, 'fashion', 'fashion-vgg', join(modelsDir, 'fashion-vgg'), fashion),
    ];

    started = Date.now();
    cluster = await Cluster.start({ moto, bucket, workers: 1, env: { ...WORKER_ENV, MODELS_DIR: modelsDir } });
    figures.cluster_start_s = seconds(started);
    // The provider each model really runs on in the worker (a GPU that fails to load falls back to the CPU, with a warning).
    figures.worker_providers = Cluster.lines(cluster.workers[0]!, 'model loaded').map((l) => `${l.model}:${l.provider}`).join(',');
    log(`gateway and 1 worker ready in ${figures.cluster_start_s} s (prefix ${cluster.prefix})`);

    for (const bench of benches) {
      const { key } = bench;
      const { images: count, rounds } = PLAN[key];
      const m = await measure(cluster, bench, count, rounds, settings);
      figures[`${key}_images_per_round`] = count;
      figures[`${key}_rounds`] = rounds;
      figures[`${key}_raw_images_per_s`] = round3(m.rawIps);
      figures[`${key}_e2e_images_per_s`] = round3(m.e2eIps);
      figures[`${key}_e2e_server_images_per_s`] = round3(m.serverIps);
      figures[`${key}_e2e_queue_wait_ms_median`] = Math.round(m.queueWaitMs);
      figures[`${key}_raw_cpu_s_per_image`] = round4(m.rawCpuPerImage);
      if (m.workerCpuPerImage !== undefined) figures[`${key}_e2e_worker_cpu_s_per_image`] = round4(m.workerCpuPerImage);
      if (m.gatewayCpuPerImage !== undefined) figures[`${key}_e2e_gateway_cpu_s_per_image`] = round4(m.gatewayCpuPerImage);
      figures[`${key}_raw_with_preprocessing_images_per_s`] = round3(m.rawPreIps);
      figures[`${key}_preprocessing_all_cores_images_per_s`] = round3(m.preAllIps);
      ratios[`${key}_e2e_vs_raw`] = round3(m.ratio);
      ratios[`${key}_e2e_vs_raw_with_preprocessing`] = round3(m.ratioPre);
      ratios[`${key}_e2e_vs_preprocessing_all_cores`] = round3(m.ratioPreAll);
      log(`${key}: raw ${m.rawIps.toFixed(3)} img/s, e2e ${m.e2eIps.toFixed(3)} img/s, median ratio ${m.ratio.toFixed(3)}`);
    }

    // Submits alone: the worker goes, so nothing competes with the gateway for the cores.
    for (const worker of cluster.workers) {
      worker.child.kill('SIGTERM');
      await worker.exited;
    }
    const fashionUris = benches.find((b) => b.key === 'fashion')!.uris;
    const submit = await submitRate(cluster, fashionUris);
    figures.submits = SUBMITS;
    figures.submits_in_flight = SUBMITS_IN_FLIGHT;
    figures.submits_per_s_10_images = round3(submit.perSecond);
    figures.submit_p50_ms = round3(submit.p50);
    figures.submit_p99_ms = round3(submit.p99);
    log(`submits: ${submit.perSecond.toFixed(1)}/s, p50 ${submit.p50.toFixed(1)} ms, p99 ${submit.p99.toFixed(1)} ms`);
    return { suite: 'e2e', figures, ratios };
  } catch (err) {
    if (cluster) logTails(cluster);
    throw err;
  } finally {
    await cluster?.stop().catch((err) => log(`cluster stop: ${(err as Error).message}`));
    store?.close();
    await moto?.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

async function sourceFiles(dir: string): Promise<Array<{ name: string; bytes: Buffer }>> {
  const names = (await readdir(dir)).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort();
  return Promise.all(names.map(async (name) => ({ name, bytes: await readFile(join(dir, name)) })));
}

/**
 * Uploads the largest round's images under distinct keys (image i is file i mod n) and
 * preprocesses each distinct file once, as the worker would, for the raw path.
 */
async function prepare(
  store: S3ObjectStore,
  bucket: string,
  key: keyof typeof PLAN,
  model: string,
  dir: string,
  files: Array<{ name: string; bytes: Buffer }>,
): Promise<Bench> {
  const folder = await readModelFolder(dir);
  const count = PLAN[key].images;
  const uris = Array.from({ length: count }, (_, i) => `s3://${bucket}/${key}/${String(i).padStart(5, '0')}-${files[i % files.length]!.name}`);
  for (let i = 0; i < uris.length; i += 32) {
    await Promise.all(uris.slice(i, i + 32).map((uri, j) => store.put(uri, files[(i + j) % files.length]!.bytes)));
  }
  // The worker's limits are the config defaults; these images are far below them.
  const preprocessor = new ImagePreprocessor({ maxImageBytes: 50 << 20, maxImagePixels: 100_000_000 });
  const images: PreprocessedImage[] = [];
  for (const file of files) images.push(await preprocessor.preprocess(file.bytes, folder.spec));
  return { key, model, folder, uris, images, files: files.map((f) => f.bytes) };
}

interface Measured {
  rawIps: number;
  /** Decode + preprocess + session.run, batch after batch, in this process: a one-process script's way. */
  rawPreIps: number;
  ratioPre: number;
  /** Decode + preprocess only, on a preprocessor with one thread per CPU: what no pipeline can beat on this machine. */
  preAllIps: number;
  ratioPreAll: number;
  e2eIps: number;
  /** Images over the task's own created_at → finished_at, as the service records them. */
  serverIps: number;
  queueWaitMs: number;
  ratio: number;
  rawCpuPerImage: number;
  workerCpuPerImage?: number;
  gatewayCpuPerImage?: number;
}

/**
 * Alternates raw, raw with preprocessing, preprocessing alone on every core and end-to-end
 * rounds (each going first in turn) after one untimed warm-up of each. Returns each one's
 * throughput over all rounds and the median over rounds of each ratio to e2e.
 */
async function measure(cluster: Cluster, bench: Bench, count: number, rounds: number, settings: SessionSettings): Promise<Measured> {
  const session = await ort.InferenceSession.create(bench.folder.modelPath, onnxSessionOptions(settings));
  const allCores = new ImagePreprocessor({ maxImageBytes: 50 << 20, maxImagePixels: 100_000_000, threads: 0 });
  try {
    const tensors = batchTensors(bench, count);
    const raw = async () => {
      const cpu = process.cpuUsage();
      const s = await rawRound(session, bench, tensors);
      const used = process.cpuUsage(cpu);
      rawCpu += (used.user + used.system) / 1e6;
      return s;
    };
    let rawCpu = 0;
    let workerCpu = 0;
    let gatewayCpu = 0;
    let cpuKnown = true;
    const worker = cluster.workers[0]!.child.pid!;
    const gateway = cluster.gateway.child.pid!;
    const waits: number[] = [];
    let serverSeconds = 0;
    const e2e = async () => {
      const before = [cpuSeconds(worker), cpuSeconds(gateway)];
      const r = await e2eRound(cluster, bench, count);
      const after = [cpuSeconds(worker), cpuSeconds(gateway)];
      if (before.includes(undefined) || after.includes(undefined)) cpuKnown = false;
      else {
        workerCpu += after[0]! - before[0]!;
        gatewayCpu += after[1]! - before[1]!;
      }
      waits.push(r.queueWaitMs);
      serverSeconds += r.serverSeconds;
      logChunks(cluster, r.taskId);
      return r.seconds;
    };

    const preprocessor = new ImagePreprocessor({ maxImageBytes: 50 << 20, maxImagePixels: 100_000_000 });
    const rawPre = () => rawWithPreprocessingRound(session, bench, preprocessor, count);
    const preAll = () => preprocessingRound(bench, allCores, count);

    log(`${bench.key}: warm-up (raw, raw with preprocessing and e2e, ${BATCH} images each)`);
    await rawRound(session, bench, tensors.slice(0, 1));
    await rawWithPreprocessingRound(session, bench, preprocessor, BATCH);
    await preprocessingRound(bench, allCores, BATCH);
    await e2eRound(cluster, bench, BATCH);
    rawCpu = 0;

    let totalRaw = 0;
    let totalRawPre = 0;
    let totalPreAll = 0;
    let totalE2e = 0;
    const roundRatios: number[] = [];
    const preRatios: number[] = [];
    const preAllRatios: number[] = [];
    for (let round = 0; round < rounds; round++) {
      // Each path goes first, second and last in turn.
      const order = [raw, rawPre, preAll, e2e];
      for (let i = 0; i < round % order.length; i++) order.push(order.shift()!);
      const seconds = new Map<unknown, number>();
      for (const path of order) seconds.set(path, await path());
      const [rawS, preS, preAllS, e2eS] = [seconds.get(raw)!, seconds.get(rawPre)!, seconds.get(preAll)!, seconds.get(e2e)!];
      totalRaw += rawS;
      totalRawPre += preS;
      totalPreAll += preAllS;
      preAllRatios.push(preAllS / e2eS);
      totalE2e += e2eS;
      roundRatios.push(rawS / e2eS);
      preRatios.push(preS / e2eS);
      log(
        `  ${bench.key} round ${round + 1}: raw ${(count / rawS).toFixed(3)}, raw with preprocessing ${(count / preS).toFixed(3)}, ` +
          `e2e ${(count / e2eS).toFixed(3)} images/s (e2e/raw ${(rawS / e2eS).toFixed(3)}, e2e/raw with preprocessing ${(preS / e2eS).toFixed(3)})`,
      );
    }
    const images = count * rounds;
    return {
      rawIps: images / totalRaw,
      rawPreIps: images / totalRawPre,
      ratioPre: median(preRatios),
      preAllIps: images / totalPreAll,
      ratioPreAll: median(preAllRatios),
      e2eIps: images / totalE2e,
      serverIps: images / serverSeconds,
      queueWaitMs: median(waits),
      ratio: median(roundRatios),
      rawCpuPerImage: rawCpu / images,
      workerCpuPerImage: cpuKnown ? workerCpu / images : undefined,
      gatewayCpuPerImage: cpuKnown ? gatewayCpu / images : undefined,
    };
  } finally {
    await allCores.close();
    await session.release();
  }
}

/**
 * The batch tensors of one round, filled before any clock starts: batch b holds images
 * b*BATCH … b*BATCH+BATCH-1 of the round (image i is images[i mod n]). Batches of the
 * same make-up share one tensor, so a long round of a small model needs few.
 */
function batchTensors(bench: Bench, count: number): ort.Tensor[] {
  const { height, width } = bench.folder.spec;
  const size = 3 * height * width;
  const n = bench.images.length;
  const made = new Map<number, ort.Tensor>();
  const tensors: ort.Tensor[] = [];
  for (let first = 0; first < count; first += BATCH) {
    let tensor = made.get(first % n);
    if (!tensor) {
      const input = new Float32Array(BATCH * size);
      for (let j = 0; j < BATCH; j++) writeNormalized(bench.images[(first + j) % n]!, bench.folder.spec, input, j * size);
      tensor = new ort.Tensor('float32', input, [BATCH, 3, height, width]);
      made.set(first % n, tensor);
    }
    tensors.push(tensor);
  }
  return tensors;
}

/**
 * One round the way a one-process script works: for each batch, decode and preprocess its
 * images (image i is files[i mod n]) with the worker's preprocessor, fill the tensor, run.
 */
async function rawWithPreprocessingRound(session: ort.InferenceSession, bench: Bench, preprocessor: ImagePreprocessor, count: number): Promise<number> {
  const { input, output } = bench.folder.manifest;
  const { height, width } = bench.folder.spec;
  const size = 3 * height * width;
  const started = performance.now();
  for (let first = 0; first < count; first += BATCH) {
    const data = new Float32Array(BATCH * size);
    for (let j = 0; j < BATCH; j++) {
      const image = await preprocessor.preprocess(bench.files[(first + j) % bench.files.length]!, bench.folder.spec);
      writeNormalized(image, bench.folder.spec, data, j * size);
    }
    const out = await session.run({ [input.name]: new ort.Tensor('float32', data, [BATCH, 3, height, width]) });
    out[output.name]!.dispose();
  }
  return (performance.now() - started) / 1000;
}

/** Decode and preprocess `count` images (image i is files[i mod n]) on every core at once, nothing else; returns seconds. */
async function preprocessingRound(bench: Bench, preprocessor: ImagePreprocessor, count: number): Promise<number> {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 * preprocessor.threads }, async () => {
      while (next < count) await preprocessor.preprocess(bench.files[next++ % bench.files.length]!, bench.folder.spec);
    }),
  );
  return (performance.now() - started) / 1000;
}

/** One raw round: every batch through `session.run`; returns seconds. */
async function rawRound(session: ort.InferenceSession, bench: Bench, tensors: ort.Tensor[]): Promise<number> {
  const { input, output } = bench.folder.manifest;
  const started = performance.now();
  for (const tensor of tensors) {
    const out = await session.run({ [input.name]: tensor });
    out[output.name]!.dispose();
  }
  return (performance.now() - started) / 1000;
}

/**
 * One task of the first `count` URIs: seconds from the moment the submit is sent to the
 * task's `finished_at` (the gateway's and this process's clocks are this machine's).
 */
async function e2eRound(cluster: Cluster, bench: Bench, count: number) {
  const images = bench.uris.slice(0, count);
  const sentAt = Date.now();
  const submit = await cluster.request('POST', '/batch_predict', { images, model: bench.model });
  if (submit.status !== 202) throw new Error(`POST /batch_predict: ${submit.status} ${JSON.stringify(submit.body)}`);
  const taskId: string = submit.body.task_id;
  const deadline = Date.now() + TASK_TIMEOUT_MS;
  for (;;) {
    const { status, body } = await cluster.request('GET', `/tasks/${taskId}`);
    if (status !== 200) throw new Error(`GET /tasks/${taskId}: ${status} ${JSON.stringify(body)}`);
    if (['succeeded', 'completed_with_errors', 'failed', 'cancelled'].includes(body.status)) {
      const seconds = (Date.parse(body.finished_at) - sentAt) / 1000;
      if (body.status !== 'succeeded' || body.progress.done !== count || body.progress.succeeded !== count) {
        throw new Error(`task ${taskId} ended ${body.status} with ${JSON.stringify(body.progress)}, expected ${count} succeeded: ${JSON.stringify(body.error ?? null)}`);
      }
      const created = Date.parse(body.created_at);
      return {
        taskId,
        seconds,
        serverSeconds: (Date.parse(body.finished_at) - created) / 1000,
        queueWaitMs: Date.parse(body.started_at) - created,
      };
    }
    if (Date.now() > deadline) throw new Error(`task ${taskId} still ${body.status} after ${TASK_TIMEOUT_MS} ms: ${JSON.stringify(body.progress)}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** The worker's own account of a task's chunks, to stderr. */
function logChunks(cluster: Cluster, taskId: string): void {
  const chunks = cluster.workers.flatMap((w) => Cluster.lines(w, 'chunk done')).filter((l) => l.task_id === taskId);
  log(`    chunks: ${chunks.map((c) => `#${c.chunk} ${c.images} images ${c.ms} ms`).join(', ')}`);
}

/** Each process's exit status and last log lines, to stderr: what a failed run needs to be read. */
function logTails(cluster: Cluster): void {
  for (const service of [cluster.gateway, ...cluster.workers].filter(Boolean)) {
    const { exitCode, signalCode } = service.child;
    log(`--- ${service.name} (${exitCode === null && signalCode === null ? 'running' : `exited ${exitCode ?? signalCode}`}), last log lines:`);
    for (const line of service.logs.slice(-15)) log(JSON.stringify(line));
  }
}

/** SUBMITS tasks of SUBMIT_IMAGES URIs each, SUBMITS_IN_FLIGHT at a time, after an untimed warm-up. */
async function submitRate(cluster: Cluster, uris: string[]) {
  const body = (i: number) => ({ images: Array.from({ length: SUBMIT_IMAGES }, (_, j) => uris[(i * SUBMIT_IMAGES + j) % uris.length]!) });
  const one = async (i: number): Promise<number> => {
    const started = performance.now();
    const reply = await cluster.request('POST', '/batch_predict', body(i));
    const ms = performance.now() - started;
    if (reply.status !== 202) throw new Error(`POST /batch_predict: ${reply.status} ${JSON.stringify(reply.body)}`);
    return ms;
  };
  const run = async (total: number) => {
    const latencies: number[] = [];
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: SUBMITS_IN_FLIGHT }, async () => {
        while (next < total) latencies.push(await one(next++));
      }),
    );
    return { seconds: (performance.now() - started) / 1000, latencies };
  };
  await run(2 * SUBMITS_IN_FLIGHT);
  const { seconds, latencies } = await run(SUBMITS);
  latencies.sort((a, b) => a - b);
  return { perSecond: SUBMITS / seconds, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
}

/** User + system CPU seconds of a process so far (Linux), or undefined. */
function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return undefined;
  }
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  return sorted.length % 2 === 1 ? sorted[Math.floor(mid)]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const seconds = (since: number) => round3((Date.now() - since) / 1000);
const round3 = (n: number) => Math.round(n * 1000) / 1000;
const round4 = (n: number) => Math.round(n * 10000) / 10000;
