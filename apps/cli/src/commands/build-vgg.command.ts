import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { intAtLeast } from './arguments';
import { loadConfig } from '@visionq/config';
import type { VggDepth } from '@visionq/vgg-builder';

interface BuildOptions {
  depth: string;
  widthDivisor: number;
  classes: number;
  seed: number;
  name?: string;
  out?: string;
  int8?: boolean;
  calibration?: string[];
}

export function registerBuildVgg(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('build-vgg')
    .description('write a servable VGG model folder (torchvision layout, seeded random weights), optionally INT8')
    .addOption(new Option('--depth <n>', 'weight layers').choices(['11', '13', '16', '19']).default('16'))
    .option('--width-divisor <n>', 'divide every channel count (1, 2, 4, … 64)', intAtLeast(1), 1)
    .option('--classes <n>', 'output classes', intAtLeast(1), 1000)
    .option('--seed <n>', 'weight seed', intAtLeast(0), 0)
    .option('--name <name>', 'model name (default vgg<depth>, or vgg<depth>-int8)')
    .option('--out <dir>', 'model folder (default <MODELS_DIR>/<name>)')
    .option('--int8', 'quantize to INT8 (QDQ) with activation scales calibrated on --calibration images')
    .option('--calibration <files...>', 'images for INT8 calibration (a few real photos)')
    .action(async (options: BuildOptions) => {
      // Loaded when it runs: the commands that talk to a gateway start without the model builder.
      const { buildVgg, quantizeVgg, writeVggModelFolder } = await import('@visionq/vgg-builder');
      const depth = Number(options.depth) as VggDepth;
      const vgg = { depth, widthDivisor: options.widthDivisor, numClasses: options.classes, seed: options.seed };
      const name = options.name ?? `vgg${depth}${options.int8 ? '-int8' : ''}`;
      const dir = options.out ?? join(loadConfig().models.dir, name);
      const started = Date.now();
      let model: Uint8Array | undefined;
      if (options.int8) {
        if (!options.calibration?.length) throw new Error('--int8 needs --calibration <images...>');
        model = await quantizeVgg(buildVgg(vgg), await calibrationTensors(options.calibration));
      }
      await writeVggModelFolder(dir, { ...vgg, name, ...(model ? { model } : {}) });
      process.stdout.write(`wrote ${dir} (${name}) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
      setExitCode(0);
    });
}

async function calibrationTensors(files: string[]): Promise<Float32Array[]> {
  const { IMAGENET_SPEC, ImagePreprocessor, writeNormalized } = await import('@visionq/imaging');
  const preprocessor = new ImagePreprocessor(loadConfig().imaging);
  try {
    const tensors: Float32Array[] = [];
    for (const file of files) {
      const image = await preprocessor.preprocess(await readFile(file), IMAGENET_SPEC);
      const tensor = new Float32Array(3 * 224 * 224);
      writeNormalized(image, IMAGENET_SPEC, tensor, 0);
      tensors.push(tensor);
    }
    return tensors;
  } finally {
    await preprocessor.close();
  }
}
