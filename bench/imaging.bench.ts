/**
 * Imaging suite: the cost of turning a 12-megapixel JPEG (a phone photo's size) into a
 * model's input, side by side in one run:
 *
 * - per core (CPU seconds per image, all of the process's threads counted, one image at a
 *   time): the exact path as it was before the WebAssembly resampler (sharp decode + the
 *   scalar port of Pillow's resize, kept in test/support), the exact path now, and the
 *   `fast` quality (shrink-on-load);
 * - on every core: the exact path through a preprocessor with one thread per CPU against
 *   the same on the calling thread alone;
 * - what `fast` costs in fidelity: its mean and largest pixel difference from exact on the
 *   fixture photos enlarged to 12 MP, and the top-1/top-5 agreement of fashion-vgg (a
 *   trained model) between exact and fast inputs on the 200 Fashion-MNIST samples enlarged
 *   to 12 MP JPEGs.
 */
import { readdir, readFile } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { IMAGENET_SPEC, ImagePreprocessor, writeNormalized, type PreprocessSpec, type PreprocessedImage } from '@visionq/imaging';
import { onnxSessionOptions } from '@visionq/inference';
import { readModelFolder } from '@visionq/models';
import { planResize } from '../packages/imaging/src/resize-plan';
import { scalarPilResizeBilinear } from '../test/support/scalar-pil-resample';
import type { BenchResult } from './main';

const ROOT = join(__dirname, '..');
const PHOTOS = join(ROOT, 'test', 'fixtures', 'photos');
const FASHION = join(ROOT, 'test', 'fixtures', 'fashion-mnist');
const FASHION_MODEL = join(ROOT, 'models', 'fashion-vgg');
/** A phone camera's 12 MP (4:3), and its square equivalent for the square Fashion-MNIST samples. */
const PHOTO_SIZE = [4032, 3024] as const;
const SQUARE_SIDE = 3464;
const JPEG_QUALITY = 92;
const ROUNDS = 3;
const LIMITS = { maxImageBytes: 50 << 20, maxImagePixels: 100_000_000 };

const log = (line: string) => process.stderr.write(`${line}\n`);

export async function runImagingBench(): Promise<BenchResult> {
  const figures: Record<string, number | string> = { cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism() };
  const ratios: Record<string, number> = {};
  sharp.cache(false);
  sharp.concurrency(1);

  const photos = await twelveMegapixelPhotos();
  figures.photos = photos.length;
  figures.photo_size = `${PHOTO_SIZE[0]}x${PHOTO_SIZE[1]}`;
  figures.photo_mean_bytes = Math.round(photos.reduce((n, p) => n + p.length, 0) / photos.length);
  log(`made ${photos.length} ${figures.photo_size} JPEGs (q${JPEG_QUALITY}, mean ${figures.photo_mean_bytes} bytes)`);

  const inline = new ImagePreprocessor(LIMITS);
  const pooled = new ImagePreprocessor({ ...LIMITS, threads: 0 });
  const fastSpec: PreprocessSpec = { ...IMAGENET_SPEC, quality: 'fast' };
  try {
    // Per core: each path over every photo, one at a time, paths taking turns going first.
    const paths: Record<string, (bytes: Buffer) => Promise<unknown>> = {
      exact_before: (bytes) => exactBefore(bytes, IMAGENET_SPEC),
      // libjpeg's full decode alone, as both exact paths' options ask for it: their floor before the window.
      decode_only: (bytes) => decodeOnly(bytes),
      exact: (bytes) => inline.preprocess(bytes, IMAGENET_SPEC),
      fast: (bytes) => inline.preprocess(bytes, fastSpec),
    };
    for (const path of Object.values(paths)) await path(photos[0]!); // warm-up
    const cpu: Record<string, number> = Object.fromEntries(Object.keys(paths).map((k) => [k, 0]));
    const names = Object.keys(paths);
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < names.length; i++) {
        const name = names[(i + round) % names.length]!;
        const started = process.cpuUsage();
        for (const photo of photos) await paths[name]!(photo);
        const used = process.cpuUsage(started);
        cpu[name]! += (used.user + used.system) / 1e6;
      }
    }
    const images = ROUNDS * photos.length;
    for (const name of names) {
      figures[`${name}_cpu_ms_per_image`] = round1((cpu[name]! / images) * 1000);
      figures[`${name}_images_per_cpu_s`] = round3(images / cpu[name]!);
      log(`${name}: ${figures[`${name}_cpu_ms_per_image`]} ms of CPU per image`);
    }
    ratios.exact_vs_exact_before_per_core = round3(cpu.exact_before! / cpu.exact!);
    ratios.fast_vs_exact_per_core = round3(cpu.exact! / cpu.fast!);
    ratios.fast_vs_exact_before_per_core = round3(cpu.exact_before! / cpu.fast!);

    // Every core: the pool against the calling thread, exact, the same images.
    const batch = Array.from({ length: Math.max(2 * pooled.threads, 12) }, (_, i) => photos[i % photos.length]!);
    await Promise.all(batch.slice(0, pooled.threads).map((p) => pooled.preprocess(p, IMAGENET_SPEC))); // start every thread
    let started = performance.now();
    for (const photo of batch) await inline.preprocess(photo, IMAGENET_SPEC);
    const oneThread = batch.length / ((performance.now() - started) / 1000);
    started = performance.now();
    await Promise.all(batch.map((p) => pooled.preprocess(p, IMAGENET_SPEC)));
    const allCores = batch.length / ((performance.now() - started) / 1000);
    figures.exact_images_per_s_calling_thread = round3(oneThread);
    figures.exact_images_per_s_all_cores = round3(allCores);
    figures.pool_threads = pooled.threads;
    ratios.exact_all_cores_vs_calling_thread = round3(allCores / oneThread);
    log(`exact, ${batch.length} images: ${oneThread.toFixed(2)}/s on the calling thread, ${allCores.toFixed(2)}/s on ${pooled.threads} threads`);

    // Fidelity of fast on the photos.
    let sum = 0;
    let max = 0;
    let values = 0;
    for (const photo of photos) {
      const exact = await pooled.preprocess(photo, IMAGENET_SPEC);
      const fast = await pooled.preprocess(photo, fastSpec);
      for (let i = 0; i < exact.pixels.length; i++) {
        const d = Math.abs(exact.pixels[i]! - fast.pixels[i]!);
        sum += d;
        if (d > max) max = d;
      }
      values += exact.pixels.length;
    }
    figures.fast_mean_abs_diff_levels = round3(sum / values);
    figures.fast_max_abs_diff_levels = max;
    log(`fast vs exact on the photos: mean ${figures.fast_mean_abs_diff_levels}, max ${max} levels`);

    Object.assign(figures, await fashionAgreement(pooled));
    ratios.fast_top1_agreement = figures.fashion_fast_top1_agreement as number;
    return { suite: 'imaging', figures, ratios };
  } finally {
    await pooled.close();
  }
}

/** The fixture photos (colour ones), enlarged to 12 MP JPEGs the way a phone would store them. */
async function twelveMegapixelPhotos(): Promise<Buffer[]> {
  const names = (await readdir(PHOTOS)).filter((f) => /\.(png|jpe?g)$/i.test(f) && !f.startsWith('palette')).sort();
  return Promise.all(
    names.map((name) =>
      sharp(join(PHOTOS, name))
        .resize(PHOTO_SIZE[0], PHOTO_SIZE[1], { fit: 'cover' })
        .jpeg({ quality: JPEG_QUALITY })
        .toBuffer(),
    ),
  );
}

/** The whole image decoded to 8-bit RGB with the decoder's options of the exact path before the window. */
function decodeOnly(bytes: Buffer) {
  return sharp(bytes, { failOn: 'error', limitInputPixels: LIMITS.maxImagePixels, ignoreIcc: true })
    .autoOrient()
    .removeAlpha()
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
}

/** The exact path as it was: header read, sharp decode, then the scalar resize. */
async function exactBefore(bytes: Buffer, spec: PreprocessSpec): Promise<PreprocessedImage> {
  await sharp(bytes, { limitInputPixels: false, failOn: 'error' }).metadata();
  const { data, info } = await decodeOnly(bytes);
  const plan = planResize(info.width, info.height, spec);
  const src = { pixels: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
  return scalarPilResizeBilinear(src, plan.resizedWidth, plan.resizedHeight, { left: plan.left, top: plan.top, width: plan.width, height: plan.height });
}

/**
 * fashion-vgg on the Fashion-MNIST samples enlarged to 12 MP JPEGs, fed exact and fast:
 * how often its top-1 (and top-5) agree, and each one's accuracy against the true labels.
 */
async function fashionAgreement(preprocessor: ImagePreprocessor): Promise<Record<string, number>> {
  const folder = await readModelFolder(FASHION_MODEL);
  const files = (await readdir(FASHION)).filter((f) => f.endsWith('.png')).sort();
  // File names carry the true class: 0004-shirt.png, 0000-ankle_boot.png, 0010-t_shirt_top.png.
  const key = (label: string) => label.toLowerCase().replace(/[^a-z]+/g, '_');
  const labels = files.map((f) => folder.labels.map(key).indexOf(f.replace(/^\d+-/, '').replace(/\.png$/, '')));
  if (labels.includes(-1)) throw new Error(`a Fashion-MNIST file name names no label of ${folder.manifest.name}`);
  const started = performance.now();
  const jpegs: Buffer[] = [];
  for (let i = 0; i < files.length; i += 8) {
    jpegs.push(
      ...(await Promise.all(
        files.slice(i, i + 8).map(async (f) =>
          sharp(await readFile(join(FASHION, f)))
            .resize(SQUARE_SIDE, SQUARE_SIDE, { kernel: 'cubic' })
            .toColourspace('srgb')
            .jpeg({ quality: JPEG_QUALITY })
            .toBuffer(),
        ),
      )),
    );
  }
  log(`made ${jpegs.length} ${SQUARE_SIDE}x${SQUARE_SIDE} Fashion-MNIST JPEGs in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const session = await ort.InferenceSession.create(folder.modelPath, onnxSessionOptions({ providers: ['cpu'], intraOpThreads: 0, interOpThreads: 0, graphOptimization: 'all' }));
  try {
    const top = async (spec: PreprocessSpec) => {
      const images = await Promise.all(jpegs.map((j) => preprocessor.preprocess(j, spec)));
      const ranked: number[][] = [];
      const size = 3 * spec.height * spec.width;
      for (let first = 0; first < images.length; first += 16) {
        const slice = images.slice(first, first + 16);
        const input = new Float32Array(slice.length * size);
        slice.forEach((image, j) => writeNormalized(image, spec, input, j * size));
        const out = await session.run({ [folder.manifest.input.name]: new ort.Tensor('float32', input, [slice.length, 3, spec.height, spec.width]) });
        const logits = out[folder.manifest.output.name]!.data as Float32Array;
        const classes = logits.length / slice.length;
        for (let j = 0; j < slice.length; j++) {
          const row = Array.from(logits.subarray(j * classes, (j + 1) * classes));
          ranked.push(row.map((_, c) => c).sort((a, b) => row[b]! - row[a]!));
        }
      }
      return ranked;
    };
    const exact = await top(folder.spec);
    const fast = await top({ ...folder.spec, quality: 'fast' });
    const n = exact.length;
    const top1 = exact.filter((r, i) => r[0] === fast[i]![0]).length;
    // Exact's top-1 among fast's top 5.
    const top5 = exact.filter((r, i) => fast[i]!.slice(0, 5).includes(r[0]!)).length;
    const correct = (ranked: number[][]) => ranked.filter((r, i) => r[0] === labels[i]).length / n;
    log(`fashion-vgg, ${n} samples at 12 MP: top-1 agreement ${top1}/${n}, top-5 ${top5}/${n}; accuracy exact ${correct(exact)}, fast ${correct(fast)}`);
    return {
      fashion_samples: n,
      fashion_fast_top1_agreement: round3(top1 / n),
      fashion_fast_top5_agreement: round3(top5 / n),
      fashion_exact_accuracy: round3(correct(exact)),
      fashion_fast_accuracy: round3(correct(fast)),
    };
  } finally {
    await session.release();
  }
}

const round1 = (n: number) => Math.round(n * 10) / 10;
const round3 = (n: number) => Math.round(n * 1000) / 1000;
