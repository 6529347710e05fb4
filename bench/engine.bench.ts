/**
 * Engine suite: raw `session.run` on the caller's thread against the engine's own path
 * (dynamic batcher + session thread) on the same model, batch size and ready images, so
 * preprocessing is in neither figure; then VGG16 INT8 (QDQ) against fp32.
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { IMAGENET_SPEC as IMAGENET, ImagePreprocessor, writeNormalized, type PreprocessedImage } from '@visionq/imaging';
import { InferenceEngine, ModelRegistry, onnxSessionOptions, type SessionSettings } from '@visionq/inference';
import { readModelFolder } from '@visionq/models';
import { createLogger } from '@visionq/observability';
import { cosineSimilarity, quantizeClassifier } from '@visionq/quantization';
import { quantizeVgg, writeVggModelFolder } from '@visionq/vgg-builder';
import type { BenchResult } from './main';

const ROOT = join(__dirname, '..');
const WORK_DIR = join(ROOT, '.cache', 'bench-engine');
const PHOTOS = join(ROOT, 'test', 'fixtures', 'photos');
const FASHION = join(ROOT, 'test', 'fixtures', 'fashion-mnist');
const IMAGE_SIZE = 3 * 224 * 224;
/** The engine's defaults on this machine: CPU, one intra-op thread per available CPU. */
const CPU: SessionSettings = { providers: ['cpu'] };
/** Images per measured round at each batch size: enough runs to average, few enough for 10 minutes. */
const IMAGES_PER_ROUND: Record<number, number> = { 1: 8, 8: 24, 16: 32 };
/** Rounds per comparison; the two paths alternate, each going first every other round. */
const ROUNDS = 6;

const log = (line: string) => process.stderr.write(`${line}\n`);

export async function runEngineBench(): Promise<BenchResult> {
  const figures: Record<string, number | string> = {};
  const ratios: Record<string, number> = {};
  await rm(WORK_DIR, { recursive: true, force: true });
  await mkdir(WORK_DIR, { recursive: true });
  try {
    const images = await fixtureImages();
    figures.images = images.length;
    figures.intra_op_threads = onnxSessionOptions(CPU).intraOpNumThreads!;

    let started = Date.now();
    const fp32Dir = join(WORK_DIR, 'models', 'vgg16');
    await writeVggModelFolder(fp32Dir, { depth: 16, seed: 0, name: 'vgg16' });
    figures.vgg16_build_s = seconds(started);
    log(`built VGG16 fp32 in ${figures.vgg16_build_s} s`);

    // Both paths get the very same onnxruntime options: the ratio is the engine's own cost.
    const raw = await ort.InferenceSession.create(join(fp32Dir, 'model.onnx'), onnxSessionOptions(CPU));
    const logger = createLogger({ silent: true });
    const registry = await ModelRegistry.load(join(WORK_DIR, 'models'), CPU, { logger });
    try {
      for (const batch of [1, 8, 16]) {
        const engine = new InferenceEngine(registry, { batching: { maxBatchSize: batch, maxQueueDelayMs: 5, preferredBatchSizes: [] }, warmup: true, logger });
        await engine.start();
        await rawThroughput(raw, images, batch, batch);
        const count = IMAGES_PER_ROUND[batch]!;
        const { a: engineIps, b: rawIps, ratio } = await sideBySide(
          () => engineThroughput(engine, images, count),
          () => rawThroughput(raw, images, batch, count),
          count,
        );
        await engine.stop();
        figures[`vgg16_fp32_b${batch}_raw_images_per_s`] = round3(rawIps);
        figures[`vgg16_fp32_b${batch}_engine_images_per_s`] = round3(engineIps);
        ratios[`engine_vs_raw_vgg16_fp32_b${batch}`] = round3(ratio);
        log(`batch ${batch}: raw ${rawIps.toFixed(3)} img/s, engine ${engineIps.toFixed(3)} img/s, ratio ${ratio.toFixed(3)}`);
      }
    } finally {
      await registry.release();
    }
    // Filling a batch tensor runs on the worker's event loop: its cost next to the model's.
    const normalizeMs = normalizeBatchMs(images, 32);
    figures.normalize_32_images_ms = round3(normalizeMs);
    ratios.normalize_vs_raw_vgg16_fp32_b16 = round3(normalizeMs / 32 / (1000 / (figures.vgg16_fp32_b16_raw_images_per_s as number)));
    log(`normalize: ${normalizeMs.toFixed(2)} ms per 32-image batch`);

    started = Date.now();
    const fp32Bytes = await readFile(join(fp32Dir, 'model.onnx'));
    const calibration = images.map((image) => normalized([image]));
    const int8Bytes = await quantizeVgg(fp32Bytes, calibration);
    figures.vgg16_int8_quantize_s = seconds(started);
    const int8 = await ort.InferenceSession.create(int8Bytes, onnxSessionOptions(CPU));
    try {
      const agreement = await compareOutputs(raw, int8, images.map((image) => normalized([image])), 224);
      figures.int8_top1_agreement = round3(agreement.top1);
      figures.int8_mean_cosine = Number(agreement.cosine.toFixed(6));
      ratios.int8_top1_agreement = round3(agreement.top1);
      for (const batch of [1, 8]) {
        const count = IMAGES_PER_ROUND[batch]!;
        await rawThroughput(int8, images, batch, batch);
        const { a: int8Ips, ratio } = await sideBySide(
          () => rawThroughput(int8, images, batch, count),
          () => rawThroughput(raw, images, batch, count),
          count,
        );
        figures[`vgg16_int8_b${batch}_raw_images_per_s`] = round3(int8Ips);
        ratios[`int8_vs_fp32_vgg16_b${batch}`] = round3(ratio);
        log(`batch ${batch}: int8 ${ratio.toFixed(3)}x fp32`);
      }
    } finally {
      await int8.release();
      await raw.release();
    }
    const fashion = await fashionInt8Agreement();
    figures.fashion_vgg_int8_top1_agreement = round3(fashion.top1);
    figures.fashion_vgg_int8_mean_cosine = Number(fashion.cosine.toFixed(6));
    ratios.fashion_vgg_int8_top1_agreement = round3(fashion.top1);
    log(`fashion-vgg int8: top-1 agreement ${fashion.top1} on ${fashion.images} held-out images`);
    return { suite: 'engine', figures, ratios };
  } finally {
    await rm(WORK_DIR, { recursive: true, force: true });
  }
}

/**
 * The fixture photos, preprocessed for ImageNet models: each as torchvision's centre crop
 * and as a direct resize, each also mirrored, so agreement is counted over 4 views a photo.
 */
async function fixtureImages(): Promise<PreprocessedImage[]> {
  const preprocessor = new ImagePreprocessor({ maxImageBytes: 50 << 20, maxImagePixels: 100_000_000 });
  const files = (await readdir(PHOTOS)).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort();
  const views: PreprocessedImage[] = [];
  for (const file of files) {
    const bytes = await readFile(join(PHOTOS, file));
    for (const spec of [IMAGENET, { ...IMAGENET, resizeMode: 'direct' as const }]) {
      const image = await preprocessor.preprocess(bytes, spec);
      views.push(image, mirrored(image));
    }
  }
  return views;
}

function mirrored(image: PreprocessedImage): PreprocessedImage {
  const { width, height, pixels } = image;
  const out = new Uint8Array(pixels.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const from = (y * width + x) * 3;
      const to = (y * width + (width - 1 - x)) * 3;
      out[to] = pixels[from]!;
      out[to + 1] = pixels[from + 1]!;
      out[to + 2] = pixels[from + 2]!;
    }
  }
  return { width, height, pixels: out };
}

function normalized(images: PreprocessedImage[]): Float32Array {
  const input = new Float32Array(images.length * IMAGE_SIZE);
  images.forEach((image, i) => writeNormalized(image, IMAGENET, input, i * IMAGE_SIZE));
  return input;
}

/** Median of 5 timed fills of a `count`-image batch tensor (after one untimed), in ms. */
function normalizeBatchMs(images: PreprocessedImage[], count: number): number {
  const batch = Array.from({ length: count }, (_, i) => images[i % images.length]!);
  normalized(batch);
  const times = Array.from({ length: 5 }, () => {
    const started = performance.now();
    normalized(batch);
    return performance.now() - started;
  }).sort((x, y) => x - y);
  return times[2]!;
}

/**
 * Times `a` and `b` (each returns seconds for `count` images) over ROUNDS rounds, taking
 * turns at going first so that drift and leftover load hit both alike. Returns each
 * one's throughput (images/s) over all rounds and the median over rounds of
 * throughput(a) / throughput(b).
 */
async function sideBySide(a: () => Promise<number>, b: () => Promise<number>, count: number) {
  let totalA = 0;
  let totalB = 0;
  const roundRatios: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    let secondsA: number;
    let secondsB: number;
    if (round % 2 === 0) {
      secondsA = await a();
      secondsB = await b();
    } else {
      secondsB = await b();
      secondsA = await a();
    }
    totalA += secondsA;
    totalB += secondsB;
    roundRatios.push(secondsB / secondsA);
    log(`  round ${round + 1}: ${(count / secondsA).toFixed(3)} vs ${(count / secondsB).toFixed(3)} images/s`);
  }
  roundRatios.sort((x, y) => x - y);
  const mid = roundRatios.length / 2;
  const ratio = roundRatios.length % 2 === 1 ? roundRatios[Math.floor(mid)]! : (roundRatios[mid - 1]! + roundRatios[mid]!) / 2;
  return { a: (count * ROUNDS) / totalA, b: (count * ROUNDS) / totalB, ratio };
}

/**
 * `count` images through `session.run` in batches of `batch`; returns seconds. The
 * images and their order are those the engine gets (image i is images[i % n]), and
 * the batch tensors are filled before the clock starts.
 */
async function rawThroughput(session: ort.InferenceSession, images: PreprocessedImage[], batch: number, count: number): Promise<number> {
  const tensors: ort.Tensor[] = [];
  for (let first = 0; first < count; first += batch) {
    const ids = Array.from({ length: batch }, (_, j) => (first + j) % images.length);
    tensors.push(new ort.Tensor('float32', normalized(ids.map((id) => images[id]!)), [batch, 3, 224, 224]));
  }
  const started = performance.now();
  for (const tensor of tensors) {
    const out = await session.run({ input: tensor });
    out.logits!.dispose();
  }
  return (performance.now() - started) / 1000;
}

/** `count` images enqueued at once, as many callers would; returns seconds. */
async function engineThroughput(engine: InferenceEngine, images: PreprocessedImage[], count: number): Promise<number> {
  const started = performance.now();
  await Promise.all(Array.from({ length: count }, (_, i) => engine.classify('vgg16', images[i % images.length]!, 5)));
  return (performance.now() - started) / 1000;
}

/** Top-1 agreement and mean cosine similarity of logits between two sessions, one input at a time. */
async function compareOutputs(a: ort.InferenceSession, b: ort.InferenceSession, inputs: Float32Array[], side: number) {
  let agree = 0;
  let cosine = 0;
  for (const data of inputs) {
    const input = new ort.Tensor('float32', data, [1, 3, side, side]);
    const x = (await a.run({ input })).logits!.data as Float32Array;
    const y = (await b.run({ input })).logits!.data as Float32Array;
    if (argmax(x) === argmax(y)) agree++;
    cosine += cosineSimilarity(x, y);
  }
  return { top1: agree / inputs.length, cosine: cosine / inputs.length };
}

/**
 * The same quantizer on the trained default model, where top-1 margins are real:
 * calibrated on the committed Fashion-MNIST images 150–199, compared on 0–149.
 */
async function fashionInt8Agreement() {
  const folder = await readModelFolder(join(ROOT, 'models', 'fashion-vgg'));
  const expected: { images: Array<{ file: string }> } = JSON.parse(await readFile(join(FASHION, 'expected.json'), 'utf8'));
  const preprocessor = new ImagePreprocessor({ maxImageBytes: 1 << 20, maxImagePixels: 1 << 20 });
  const inputs: Float32Array[] = [];
  for (const image of expected.images) {
    const tensor = new Float32Array(IMAGE_SIZE);
    writeNormalized(await preprocessor.preprocess(await readFile(join(FASHION, image.file)), folder.spec), folder.spec, tensor, 0);
    inputs.push(tensor);
  }
  const fp32Bytes = await readFile(folder.modelPath);
  const fp32 = await ort.InferenceSession.create(fp32Bytes, onnxSessionOptions(CPU));
  const int8 = await ort.InferenceSession.create(await quantizeClassifier(fp32Bytes, inputs.slice(150)), onnxSessionOptions(CPU));
  try {
    return { ...(await compareOutputs(fp32, int8, inputs.slice(0, 150), 224)), images: 150 };
  } finally {
    await fp32.release();
    await int8.release();
  }
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

const seconds = (since: number) => round3((Date.now() - since) / 1000);
const round3 = (n: number) => Math.round(n * 1000) / 1000;
