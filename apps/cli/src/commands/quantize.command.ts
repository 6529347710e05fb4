import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { ErrorCode, VisionqError } from '@visionq/api';
import { loadConfig } from '@visionq/config';
import type { ImagePreprocessor } from '@visionq/imaging';
import type { ModelFolder } from '@visionq/models';
import { intAtLeast, invalidArgument } from './arguments';
import { openCalibrationSource, splitSamples, type CalibrationSource } from './calibration-source';

export interface QuantizeOptions {
  calibration: string;
  out?: string;
  samples: number;
  force?: boolean;
  json?: boolean;
}

/** Files of the source folder the INT8 copy does not take: its own graph and manifest, and the evaluation of the original (`visionq train`'s), which is not the copy's. */
const REPLACED = ['model.onnx', 'manifest.json', 'metrics.json', 'confusion.png'];

/** Images preprocessed and handed to calibration at once: a batch, and a bound on memory. */
const BATCH = 16;

export function registerQuantize(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('quantize')
    .description('write an INT8 (QDQ) copy of a model folder, calibrated on real images, and compare it with the original')
    .argument('<model-dir>', 'model folder (model.onnx, manifest.json, labels)')
    .requiredOption('--calibration <folder|s3://bucket/prefix>', 'images to calibrate on, preprocessed as the model is served (a folder is walked)')
    .option('--out <dir>', 'folder to write (default <MODELS_DIR>/<name>-int8)')
    .option('--samples <n>', 'images to use at most, spread over the sorted list; a fifth is held back to compare', intAtLeast(3), 200)
    .option('--force', 'replace the output folder when it exists')
    .option('--json', 'one JSON line on stdout instead of the summary')
    .addHelpText(
      'after',
      '\nThe new folder serves as any model: manifest name <name>-int8, same version, labels and preprocessing.\n' +
        'Progress goes to stderr. Exit status 0 on success, 1 on failure (with --json, the error as {"error": {...}} on stdout).',
    )
    .action(async (modelDir: string, options: QuantizeOptions) => {
      try {
        const summary = await quantize(modelDir, options);
        process.stdout.write(options.json ? `${JSON.stringify(summary)}\n` : formatSummary(summary));
        setExitCode(0);
      } catch (err) {
        if (!options.json || !(err instanceof VisionqError)) throw err;
        process.stdout.write(`${JSON.stringify({ error: { code: err.code, message: err.message, details: err.details } })}\n`);
        setExitCode(1);
      }
    });
}

/** What `visionq quantize --json` prints. */
export interface QuantizeSummary {
  model: string;
  name: string;
  out: string;
  source: string;
  calibration_images: number;
  held_back_images: number;
  /** Images that could not be decoded, left out of both sets. */
  skipped_images: number;
  top1_agreement: { agree: number; total: number; rate: number };
  top5_agreement: { agree: number; total: number; rate: number };
  mean_logit_cosine: number;
  speed: { fp32_images_per_s: number; int8_images_per_s: number; ratio: number };
  bytes: { fp32: number; int8: number };
  seconds: number;
}

export async function quantize(modelDir: string, options: QuantizeOptions): Promise<QuantizeSummary> {
  const started = Date.now();
  const config = loadConfig();
  // Loaded when it runs: the commands that talk to a gateway start without onnxruntime.
  const { readModelFolder } = await import('@visionq/models');
  const { assertQuantizable, compareClassifiers, quantizeClassifier, QuantizationError } = await import('@visionq/quantization');
  const folder = await readModelFolder(modelDir);
  const name = `${folder.manifest.name}-int8`;
  const out = resolve(options.out ?? join(config.models.dir, name));
  if (resolve(modelDir) === out) throw invalidArgument('out', `--out ${out} is the model folder itself`);
  if (!options.force && (await stat(out).catch(() => null))) throw new VisionqError(ErrorCode.Conflict, `${out} exists (--force replaces it)`, [{ field: 'out', message: 'exists' }]);
  const fp32 = await readFile(folder.modelPath);
  try {
    assertQuantizable(fp32);
  } catch (err) {
    if (err instanceof QuantizationError) throw invalidArgument('model', err.message);
    throw err;
  }

  const source = await openCalibrationSource(options.calibration, config);
  const { ImagePreprocessor, inputDims } = await import('@visionq/imaging');
  const preprocessor = new ImagePreprocessor(config.imaging);
  try {
    const { calibration, heldBack } = splitSamples(source.images, options.samples);
    progress(`${folder.manifest.name}: ${source.images.length} images in ${options.calibration}; calibrating on ${calibration.length}, holding back ${heldBack.length}`);
    const preprocess = await tensorMaker(folder, preprocessor, source);
    let skipped = 0;
    const batches = async function* () {
      for (let i = 0; i < calibration.length; i += BATCH) {
        const { tensor, failed } = await preprocess(calibration.slice(i, i + BATCH));
        skipped += failed;
        if (tensor.length > 0) yield tensor;
        progress(`calibration: ${Math.min(i + BATCH, calibration.length)}/${calibration.length} images`);
      }
    };
    const int8 = await quantizeClassifier(fp32, batches());
    const held = await preprocess(heldBack);
    skipped += held.failed;
    if (held.tensor.length === 0) throw invalidArgument('calibration', 'none of the held-back images could be decoded');
    progress(`comparing fp32 and INT8 on ${heldBack.length - held.failed} held-back images (alternating timed rounds, a second or more each)`);
    const { input, output } = folder.manifest;
    const report = await compareClassifiers(fp32, int8, held.tensor, {
      inputName: input.name,
      outputName: output.name,
      sampleDims: inputDims(folder.spec, 1).slice(1),
      intraOpThreads: config.inference.intraOpThreads,
    });
    await writeFolder(folder, out, name, int8, options.force === true);
    const rate = (agree: number) => ({ agree, total: report.images, rate: agree / report.images });
    return {
      model: folder.manifest.name,
      name,
      out,
      source: options.calibration,
      calibration_images: calibration.length - (skipped - held.failed),
      held_back_images: report.images,
      skipped_images: skipped,
      top1_agreement: rate(report.top1Agree),
      top5_agreement: rate(report.top5Agree),
      mean_logit_cosine: report.meanCosine,
      speed: { fp32_images_per_s: report.fp32ImagesPerSecond, int8_images_per_s: report.int8ImagesPerSecond, ratio: report.int8ImagesPerSecond / report.fp32ImagesPerSecond },
      bytes: { fp32: fp32.length, int8: int8.length },
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    source.close();
    await preprocessor.close();
  }
}

/**
 * Preprocesses images exactly as the workers do (the manifest's spec, ImagePreprocessor,
 * writeNormalized) into one batch in the model's layout; an image that cannot be read or
 * decoded is left out and counted, with a line on stderr.
 */
async function tensorMaker(folder: ModelFolder, preprocessor: ImagePreprocessor, source: CalibrationSource) {
  const { writeNormalized } = await import('@visionq/imaging');
  const size = 3 * folder.spec.height * folder.spec.width;
  return async (images: string[]): Promise<{ tensor: Float32Array; failed: number }> => {
    const tensor = new Float32Array(images.length * size);
    let done = 0;
    for (const image of images) {
      try {
        writeNormalized(await preprocessor.preprocess(await source.read(image), folder.spec), folder.spec, tensor, done * size);
        done++;
      } catch (err) {
        if (!(err instanceof VisionqError)) throw err;
        progress(`skipped ${image}: ${err.message}`);
      }
    }
    return { tensor: tensor.subarray(0, done * size), failed: images.length - done };
  };
}

/**
 * The servable INT8 folder: the source folder's files (labels and anything else it
 * holds) with model.onnx replaced and the manifest renamed. Written beside `out` and
 * renamed into place, so a models directory never holds half a folder.
 */
async function writeFolder(folder: ModelFolder, out: string, name: string, int8: Uint8Array, force: boolean): Promise<void> {
  const staging = join(dirname(out), `.${basename(out)}.${process.pid}.tmp`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  try {
    for (const entry of await readdir(folder.dir, { withFileTypes: true })) {
      if (entry.isFile() && !REPLACED.includes(entry.name)) await copyFile(join(folder.dir, entry.name), join(staging, entry.name));
    }
    const manifest = JSON.parse(await readFile(join(folder.dir, 'manifest.json'), 'utf8'));
    manifest.name = name;
    manifest.description = `INT8 (QDQ: per-channel int8 weights, uint8 activations) of ${folder.manifest.name} version ${folder.manifest.version}, written by visionq quantize.${folder.manifest.description ? ` ${folder.manifest.description}` : ''}`;
    await writeFile(join(staging, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    await writeFile(join(staging, 'model.onnx'), int8);
    if (force) await rm(out, { recursive: true, force: true });
    await rename(staging, out);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
}

function formatSummary(s: QuantizeSummary): string {
  const percent = (x: { agree: number; total: number; rate: number }) => `${x.agree}/${x.total} (${(100 * x.rate).toFixed(1)} %)`;
  const mb = (bytes: number) => `${(bytes / 1e6).toFixed(2)} MB`;
  return [
    `wrote ${s.out} (${s.name}) in ${s.seconds.toFixed(1)} s`,
    `calibration images:  ${s.calibration_images}, held back: ${s.held_back_images}${s.skipped_images ? `, skipped (undecodable): ${s.skipped_images}` : ''}`,
    `top-1 agreement:     ${percent(s.top1_agreement)}`,
    `top-5 agreement:     ${percent(s.top5_agreement)} (fp32 top-1 among INT8 top 5)`,
    `mean logit cosine:   ${s.mean_logit_cosine.toFixed(5)}`,
    `speed:               fp32 ${s.speed.fp32_images_per_s.toFixed(1)} images/s, INT8 ${s.speed.int8_images_per_s.toFixed(1)} images/s, INT8 ÷ fp32 ${s.speed.ratio.toFixed(2)}`,
    `size:                ${mb(s.bytes.fp32)} → ${mb(s.bytes.int8)}`,
    '',
  ].join('\n');
}

function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}
