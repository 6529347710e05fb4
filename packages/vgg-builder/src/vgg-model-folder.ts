import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { IMAGENET_SPEC, type PreprocessSpec } from '@visionq/imaging';
import { buildVgg, VGG_INPUT_NAME, VGG_OUTPUT_NAME } from './vgg-builder';
import { resolveVggOptions, VGG_INPUT_SIZE, type VggOptions } from './vgg-config';

/**
 * A served model folder: `model.onnx`, `manifest.json` and `labels.txt`. The manifest
 * follows the schema of packages/inference/src/model-manifest.ts (snake_case, as users
 * write it), with torchvision's ImageNet preprocessing.
 */
export interface VggModelFolderOptions extends VggOptions {
  /** Manifest `name`: lower-case letters, digits, `.`, `_`, `-`. Default `vgg<depth>`. */
  name?: string;
  /** Manifest `version`. Default `1`. */
  version?: string;
  /** Manifest `description`. Default: says what was built, from which options. */
  description?: string;
  /**
   * The ONNX bytes to write instead of building them from the options (e.g. the INT8
   * variant from `quantizeVgg`); the options must still describe it. Default: `buildVgg`.
   */
  model?: Uint8Array;
}

/** The manifest.json written next to the model (see packages/inference model-manifest.ts). */
export interface VggManifest {
  name: string;
  version: string;
  description: string;
  input: { name: string; layout: 'NCHW'; height: number; width: number; channels: 3 };
  output: { name: string; activation: 'softmax' };
  preprocess: {
    resize_mode: PreprocessSpec['resizeMode'];
    resize_size: number;
    mean: PreprocessSpec['mean'];
    std: PreprocessSpec['std'];
    scale: number;
    channel_order: PreprocessSpec['channelOrder'];
  };
  labels: string;
}

export interface VggModelFolder {
  modelPath: string;
  manifestPath: string;
  labelsPath: string;
  manifest: VggManifest;
}

/** Writes (creating `dir` if needed, replacing what is there) a folder visionq can serve. */
export async function writeVggModelFolder(dir: string, options: VggModelFolderOptions = {}): Promise<VggModelFolder> {
  const resolved = resolveVggOptions(options);
  const name = options.name ?? `vgg${resolved.depth}`;
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(name)) throw new RangeError(`name must be lower-case letters, digits, ".", "_" and "-", got ${JSON.stringify(name)}`);
  const manifest: VggManifest = {
    name,
    version: options.version ?? '1',
    description:
      options.description ??
      `VGG${resolved.depth} (torchvision layout, widthDivisor ${resolved.widthDivisor}) with random weights, seed ${resolved.seed}; ` +
        'built by @visionq/vgg-builder for tests and benchmarks, its predictions mean nothing.',
    input: { name: VGG_INPUT_NAME, layout: 'NCHW', height: VGG_INPUT_SIZE, width: VGG_INPUT_SIZE, channels: 3 },
    output: { name: VGG_OUTPUT_NAME, activation: 'softmax' },
    preprocess: {
      resize_mode: IMAGENET_SPEC.resizeMode,
      resize_size: IMAGENET_SPEC.resizeSize,
      mean: IMAGENET_SPEC.mean,
      std: IMAGENET_SPEC.std,
      scale: IMAGENET_SPEC.scale,
      channel_order: IMAGENET_SPEC.channelOrder,
    },
    labels: 'labels.txt',
  };
  const labels = Array.from({ length: resolved.numClasses }, (_, i) => `class_${i}`);
  const folder: VggModelFolder = {
    modelPath: join(dir, 'model.onnx'),
    manifestPath: join(dir, 'manifest.json'),
    labelsPath: join(dir, manifest.labels),
    manifest,
  };
  await mkdir(dir, { recursive: true });
  await writeFile(folder.modelPath, options.model ?? buildVgg(resolved));
  await writeFile(folder.labelsPath, labels.join('\n') + '\n');
  await writeFile(folder.manifestPath, JSON.stringify(manifest, null, 2) + '\n');
  return folder;
}
