import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { ErrorCode, modelRef, VisionqError } from '@visionq/api';
import { finiteNumber, intAtLeast, invalidArgument, oneOf } from './arguments';

/** The Python tool, from the repository this CLI was built in. */
const TRAIN_SCRIPT = join(__dirname, '..', '..', '..', '..', 'tools', 'train', 'train_image_folder.py');
const ARCHS = ['vgg11', 'vgg11_bn', 'vgg13', 'vgg13_bn', 'vgg16', 'vgg16_bn', 'vgg19', 'vgg19_bn'];
/** Images per onnxruntime run in the parity check. */
const BATCH = 16;

interface TrainOptions {
  data: string;
  out: string;
  version?: string;
  arch: string;
  widthDivisor: number;
  epochs: number;
  batchSize: number;
  imageSize: number;
  weights?: string;
  lr: number;
  momentum: number;
  weightDecay: number;
  flip: number;
  jitter: number;
  valFraction: number;
  seed: number;
  threads: number;
  device: string;
  int8?: boolean;
  python: string;
  json?: boolean;
}

export function registerTrain(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('train')
    .description("train a VGG classifier on a folder of labelled photos (Debian's PyTorch), check its ONNX export against visionq's own preprocessing, and add it as a new version of a model")
    .requiredOption('--data <dir>', 'DIR/<class>/<image> (a share of each class is held out for validation), or DIR/train and DIR/val')
    .requiredOption('--out <models/NAME>', 'the model folder: the new version goes to <out>/<version>/')
    .option('--version <v>', 'version to write (default: the highest numbered version + 1, or 1)')
    .option('--arch <arch>', `network: ${ARCHS.join(', ')}`, oneOf(ARCHS), 'vgg16_bn')
    .option('--width-divisor <n>', 'divide every layer width by n (1 = torchvision\'s network; 8 or 16 for small data on a CPU)', intAtLeast(1), 1)
    .option('--epochs <n>', 'passes over the training images', intAtLeast(1), 30)
    .option('--batch-size <n>', 'images per step', intAtLeast(1), 32)
    .option('--image-size <n>', 'training crop and served input, a multiple of 32 (evaluation resizes the shorter side to size·256/224, then crops)', intAtLeast(32), 224)
    .option('--weights <file>', 'start from a torchvision state_dict (.pth) you supply; its last layer is replaced (nothing is downloaded)')
    .option('--lr <x>', 'SGD learning rate, cosine-annealed to 0', finiteNumber, 0.01)
    .option('--momentum <x>', 'SGD momentum', finiteNumber, 0.9)
    .option('--weight-decay <x>', 'L2 weight decay', finiteNumber, 5e-4)
    .option('--flip <p>', 'probability of a horizontal flip', finiteNumber, 0.5)
    .option('--jitter <x>', 'colour jitter of brightness, contrast and saturation (±)', finiteNumber, 0.2)
    .option('--val-fraction <x>', 'share of each class held out for validation when DIR has no val/', finiteNumber, 0.2)
    .option('--seed <n>', 'seed of the split, the initialisation, the data order and the augmentation', intAtLeast(0), 0)
    .option('--threads <n>', 'torch CPU threads (0 = one per CPU)', intAtLeast(0), 0)
    .option('--device <d>', 'auto, cpu or cuda (mixed precision on CUDA)', oneOf(['auto', 'cpu', 'cuda']), 'auto')
    .option('--int8', 'also write an INT8 copy with visionq quantize, calibrated on the training images, to <out>-int8/<version>/')
    .option('--python <path>', "the Python with PyTorch and torchvision", '/usr/bin/python3')
    .option('--json', 'one JSON line on stdout at the end instead of the summary')
    .addHelpText(
      'after',
      '\nThe version is written under a hidden staging name and renamed into place only once visionq, preprocessing each validation\n' +
        "image itself and running the ONNX file in onnxruntime, gives PyTorch's top-1 for every one; running gateways and workers\n" +
        'then load it without a restart. Progress goes to stderr. Exit status 0 on success, 1 on failure, 2 on bad usage.',
    )
    .action(async (options: TrainOptions) => {
      try {
        const summary = await train(options);
        process.stdout.write(options.json ? `${JSON.stringify(summary)}\n` : formatSummary(summary));
        setExitCode(0);
      } catch (err) {
        if (!(err instanceof VisionqError)) throw err;
        if (options.json) process.stdout.write(`${JSON.stringify({ error: { code: err.code, message: err.message, details: err.details } })}\n`);
        else process.stderr.write(`visionq train: ${err.message}\n`);
        setExitCode(err.code === ErrorCode.InvalidArgument || err.code === ErrorCode.Conflict ? 2 : 1);
      }
    });
}

/** What `visionq train --json` prints. */
interface TrainSummary {
  model: string;
  version: string;
  ref: string;
  dir: string;
  classes: string[];
  train_images: number;
  val_images: number;
  accuracy: number;
  cohen_kappa: number;
  parity: Parity;
  training_seconds: number;
  int8?: { dir: string; top1_agreement: number; held_back_images: number };
}

interface Metrics {
  classes: string[];
  images: number;
  accuracy: number;
  cohen_kappa: number;
  training: { train_images: number; seconds: number };
  parity?: Parity;
}

/** metrics.json's `parity`: PyTorch's top-1 probability against visionq's for the same class, at most this far apart. */
interface Parity {
  images: number;
  agreed: number;
  max_probability_difference: number;
}

async function train(options: TrainOptions): Promise<TrainSummary> {
  const out = resolve(options.out);
  const name = basename(out);
  const { VERSION, manifestSchema } = await import('@visionq/models');
  if (!manifestSchema.shape.name.safeParse(name).success) throw invalidArgument('out', `--out ${options.out}: "${name}" is not a model name (lower-case letters, digits, ".", "_" and "-")`);
  if (options.version !== undefined && !VERSION.test(options.version)) throw invalidArgument('version', `--version ${options.version}: letters, digits, ".", "_" and "-"`);
  checkModelFolder(out, 'out');
  const version = options.version ?? (await nextVersion(out));
  const dir = join(out, version);
  checkNewVersion(dir, 'version');
  // Refused before training, not after it: quantize would refuse them once the fp32 version is published.
  const int8Dir = join(dirname(out), `${name}-int8`, version);
  if (options.int8) {
    checkModelFolder(dirname(int8Dir), 'int8');
    checkNewVersion(int8Dir, 'int8');
  }
  checkPython(options.python);

  // Hidden until checked: workers watching the models directory skip names starting with ".".
  const staging = join(out, `.${version}.partial-${randomUUID().slice(0, 8)}`);
  await mkdir(out, { recursive: true });
  let python: ChildProcess | undefined;
  let stopping = false;
  let published = false;
  // The child first: left running it would finish its epochs and write the staging folder again.
  const stop = (signal: NodeJS.Signals) => {
    stopping = true;
    void (async () => {
      if (python && python.exitCode === null && python.signalCode === null) {
        const exited = once(python, 'close');
        python.kill('SIGTERM');
        await exited;
      }
      await rm(staging, { recursive: true, force: true });
      progress(published ? `stopped by ${signal}: ${dir} is published, its INT8 copy is not` : `stopped by ${signal}: nothing was published (${staging} removed)`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    })();
  };
  process.once('SIGINT', stop).once('SIGTERM', stop);
  try {
    await runPython(options, staging, name, version, (child) => (python = child));
    const metrics = JSON.parse(await readFile(join(staging, 'metrics.json'), 'utf8')) as Metrics;
    const parity = await checkParity(staging, name, version);
    metrics.parity = parity;
    await writeFile(join(staging, 'metrics.json'), `${JSON.stringify(metrics, null, 2)}\n`);
    await rm(join(staging, 'validation.json'));
    await rename(staging, dir);
    published = true;
    progress(`wrote ${dir}`);
    const summary: TrainSummary = {
      model: name,
      version,
      ref: modelRef(name, version),
      dir,
      classes: metrics.classes,
      train_images: metrics.training.train_images,
      val_images: metrics.images,
      accuracy: metrics.accuracy,
      cohen_kappa: metrics.cohen_kappa,
      parity,
      training_seconds: metrics.training.seconds,
    };
    if (options.int8) {
      const { quantize } = await import('./quantize.command.js');
      // The training images, as the Python tool finds them: DIR/train when DIR has train/ and val/.
      const split = join(options.data, 'train');
      const calibration = existsSync(split) && existsSync(join(options.data, 'val')) ? split : options.data;
      progress(`quantizing to ${int8Dir}, calibrated on ${calibration}`);
      const report = await quantize(dir, { calibration, out: int8Dir, samples: 200 });
      summary.int8 = { dir: int8Dir, top1_agreement: report.top1_agreement.rate, held_back_images: report.held_back_images };
    }
    return summary;
  } catch (err) {
    // A Ctrl-C also ends the child (one process group): the stop handler reports and exits, not this error.
    if (stopping) await new Promise(() => {});
    if (!(err instanceof ParityError)) await rm(staging, { recursive: true, force: true });
    throw err;
  } finally {
    process.off('SIGINT', stop).off('SIGTERM', stop);
  }
}

/** A model folder versions can be added to: not a flat one (manifest.json at its top). */
function checkModelFolder(modelDir: string, field: string): void {
  if (existsSync(join(modelDir, 'manifest.json'))) {
    throw invalidArgument(field, `${modelDir} is a flat model folder (manifest.json at its top): move its files into ${join(modelDir, '1')}/ to keep it as version 1, then train again`);
  }
}

function checkNewVersion(dir: string, field: string): void {
  if (existsSync(dir)) throw new VisionqError(ErrorCode.Conflict, `${dir} exists: versions are never overwritten (--version names another)`, [{ field, message: 'exists' }]);
}

/** The highest numbered version folder + 1, or 1. */
async function nextVersion(out: string): Promise<string> {
  const entries = await readdir(out, { withFileTypes: true }).catch(() => []);
  const numbers = entries.filter((e) => e.isDirectory() && /^\d+$/.test(e.name)).map((e) => Number(e.name));
  return String(numbers.length === 0 ? 1 : Math.max(...numbers) + 1);
}

function checkPython(python: string): void {
  const probe = spawnSync(python, ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    const why = probe.error ? probe.error.message : (probe.stderr.trim().split('\n').pop() ?? `exit ${probe.status}`);
    throw new VisionqError(ErrorCode.Unavailable, `${python} cannot import torch and torchvision (${why}): install Debian's PyTorch with \`apt-get install -y python3-torch python3-torchvision\`, or name another Python with --python`, [
      { field: 'python', message: 'no torch' },
    ]);
  }
}

/** Runs the Python tool into `staging`, showing one line per epoch on stderr. */
async function runPython(options: TrainOptions, staging: string, name: string, version: string, started: (child: ChildProcess) => void): Promise<void> {
  const args = [
    TRAIN_SCRIPT,
    ...['--data', resolve(options.data), '--out', staging, '--name', name, '--version', version, '--arch', options.arch],
    ...['--width-divisor', options.widthDivisor, '--epochs', options.epochs, '--batch-size', options.batchSize, '--image-size', options.imageSize].map(String),
    ...['--lr', options.lr, '--momentum', options.momentum, '--weight-decay', options.weightDecay, '--flip', options.flip, '--jitter', options.jitter].map(String),
    ...['--val-fraction', options.valFraction, '--seed', options.seed, '--threads', options.threads, '--device', options.device].map(String),
    ...(options.weights ? ['--weights', resolve(options.weights)] : []),
  ];
  const child = spawn(options.python, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  started(child);
  const errors: string[] = [];
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    process.stderr.write(text);
    errors.push(...text.split('\n').filter(Boolean));
  });
  for await (const line of createInterface({ input: child.stdout })) showEvent(line);
  const code: number | null = child.exitCode ?? (await new Promise((resolve) => child.once('close', resolve)));
  if (code === 0) return;
  const message = errors.filter((l) => l.startsWith('train: ')).pop()?.slice('train: '.length) ?? errors.pop() ?? `exit status ${code}`;
  throw new VisionqError(code === 2 ? ErrorCode.InvalidArgument : ErrorCode.Internal, `training failed: ${message}`, [{ field: 'data', message }]);
}

function showEvent(line: string): void {
  let event: Record<string, any>;
  try {
    event = JSON.parse(line);
  } catch {
    progress(line);
    return;
  }
  if (event.event === 'start') {
    progress(`training ${event.arch} (${event.parameters.toLocaleString('en')} parameters) on ${event.device}: ${event.train_images} training and ${event.val_images} validation images of ${event.classes.length} classes (${event.classes.join(', ')})`);
  } else if (event.event === 'epoch') {
    const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
    progress(
      `epoch ${String(event.epoch).padStart(String(event.epochs).length)}/${event.epochs}  loss ${event.train_loss.toFixed(4)}  train ${pct(event.train_accuracy)}  val ${pct(event.val_accuracy)}  ${event.seconds.toFixed(1)} s  ETA ${duration(event.eta_seconds)}`,
    );
  } else if (event.event === 'done') {
    progress(`validation: accuracy ${(100 * event.accuracy).toFixed(1)}%, Cohen's kappa ${event.cohen_kappa.toFixed(3)} on ${event.val_images} images; checking the export`);
  }
}

class ParityError extends VisionqError {}

/**
 * visionq's own preprocessing and onnxruntime on every validation image must give
 * PyTorch's top-1: otherwise the served model would not be the one that was evaluated.
 */
async function checkParity(staging: string, name: string, version: string): Promise<Parity> {
  const { loadConfig } = await import('@visionq/config');
  const { readModelFolder } = await import('@visionq/models');
  const { ImagePreprocessor, inputDims, writeNormalized } = await import('@visionq/imaging');
  const { onnxSessionBackend } = await import('@visionq/inference');
  const folder = await readModelFolder(staging, { name, version });
  const expected = JSON.parse(await readFile(join(staging, 'validation.json'), 'utf8')) as Array<{ image: string; top1: number; probability: number }>;
  const session = await onnxSessionBackend.create(folder, { providers: ['cpu'] });
  // The limits and decoding the workers use: a photo they would refuse fails here too.
  const preprocessor = new ImagePreprocessor(loadConfig().imaging);
  const mismatches: string[] = [];
  // Agreeing top-1s can hide a preprocessing drift; the probabilities show it.
  let maxDifference = 0;
  try {
    const size = 3 * folder.spec.height * folder.spec.width;
    for (let start = 0; start < expected.length; start += BATCH) {
      const batch = expected.slice(start, start + BATCH);
      const input = new Float32Array(batch.length * size);
      for (const [i, item] of batch.entries()) {
        writeNormalized(await preprocessor.preprocess(await readFile(item.image), folder.spec), folder.spec, input, i * size);
      }
      const output = await session.run(folder.manifest.input.name, input, inputDims(folder.spec, batch.length), folder.manifest.output.name);
      const classes = folder.labels.length;
      for (const [i, item] of batch.entries()) {
        const row = Array.from(output.data.subarray(i * classes, (i + 1) * classes));
        const top1 = row.indexOf(Math.max(...row));
        const sum = row.reduce((a, x) => a + Math.exp(x - row[top1]!), 0);
        maxDifference = Math.max(maxDifference, Math.abs(Math.exp(row[item.top1]! - row[top1]!) / sum - item.probability));
        if (top1 !== item.top1) {
          mismatches.push(`${item.image}: PyTorch ${folder.labels[item.top1]} (${item.probability.toFixed(4)}), visionq ${folder.labels[top1]} (${(1 / sum).toFixed(4)})`);
        }
      }
    }
  } finally {
    await session.release();
    await preprocessor.close();
  }
  const max_probability_difference = Number(maxDifference.toPrecision(3));
  progress(
    `parity: visionq's preprocessing and onnxruntime give PyTorch's top-1 for ${expected.length - mismatches.length}/${expected.length} validation images (its probability within ${max_probability_difference.toExponential(1)})`,
  );
  if (mismatches.length > 0) {
    throw new ParityError(
      ErrorCode.ModelInvalid,
      `the export disagrees with PyTorch on ${mismatches.length} of ${expected.length} validation images; nothing was published, the files are in ${staging}:\n  ${mismatches.slice(0, 20).join('\n  ')}`,
      [{ field: 'parity', message: `${mismatches.length} disagree` }],
    );
  }
  return { images: expected.length, agreed: expected.length, max_probability_difference };
}

function formatSummary(s: TrainSummary): string {
  return [
    `${s.ref}: ${s.classes.length} classes, ${s.train_images} training images, ${s.training_seconds.toFixed(0)} s`,
    `validation accuracy  ${(100 * s.accuracy).toFixed(1)}% on ${s.val_images} images, Cohen's kappa ${s.cohen_kappa.toFixed(3)}`,
    `parity               ${s.parity.agreed}/${s.parity.images} images: visionq's top-1 is PyTorch's, its probability within ${s.parity.max_probability_difference.toExponential(1)}`,
    `folder               ${s.dir} (metrics.json, confusion.png)`,
    ...(s.int8 ? [`INT8                 ${s.int8.dir}, top-1 agreement with fp32 ${(100 * s.int8.top1_agreement).toFixed(1)}% on ${s.int8.held_back_images} held-back images`] : []),
    `serve it: npm start (or leave running gateways and workers: they load it), then "model": "${s.model}" or "${s.ref}"`,
    '',
  ].join('\n');
}

function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

function duration(seconds: number): string {
  const s = Math.round(seconds);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
}
