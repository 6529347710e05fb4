import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelError } from '@visionq/api';
import type { PreprocessSpec } from '@visionq/imaging';
import { manifestSchema, type ModelManifest } from './model.manifest';

/** What a model folder declares, read and checked, before any session exists. */
export interface ModelFolder {
  dir: string;
  modelPath: string;
  manifest: ModelManifest;
  labels: string[];
  spec: PreprocessSpec;
}

/**
 * Reads `manifest.json` and the labels file of the model folder `dir`. Every problem is
 * a ModelError naming the folder and the field.
 */
export async function readModelFolder(dir: string): Promise<ModelFolder> {
  const where = `model folder ${dir}`;
  const manifestText = await readText(join(dir, 'manifest.json'), where);
  let json: unknown;
  try {
    json = JSON.parse(manifestText);
  } catch (err) {
    throw new ModelError(`${where}: manifest.json is not valid JSON: ${(err as Error).message}`, [{ field: 'manifest.json', message: 'invalid JSON' }]);
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const details = parsed.error.issues.map((i) => ({ field: i.path.join('.') || '(root)', message: i.message }));
    throw new ModelError(`${where}: manifest.json: ${details.map((d) => `${d.field}: ${d.message}`).join('; ')}`, details);
  }
  const manifest = parsed.data;
  const { preprocess } = manifest;
  const resizeSize = resizeSizeOf(manifest);
  if (preprocess.resize_mode === 'shorter_side') {
    if (resizeSize === undefined || resizeSize < Math.max(manifest.input.height, manifest.input.width)) {
      throw new ModelError(`model "${manifest.name}": preprocess.resize_size must be at least the input size when resize_mode is shorter_side`, [
        { field: 'preprocess.resize_size', message: `got ${resizeSize ?? 'nothing'}` },
      ]);
    }
  }
  const labels = (await readText(join(dir, manifest.labels), `model "${manifest.name}"`))
    .split(/\r?\n/)
    .map((l) => l.trim());
  while (labels.length > 0 && labels[labels.length - 1] === '') labels.pop();
  if (labels.length === 0) throw new ModelError(`model "${manifest.name}": ${manifest.labels} has no labels`, [{ field: 'labels', message: 'empty' }]);
  return {
    dir,
    modelPath: join(dir, 'model.onnx'),
    manifest,
    labels,
    spec: {
      height: manifest.input.height,
      width: manifest.input.width,
      resizeMode: preprocess.resize_mode,
      resizeSize: resizeSize ?? Math.max(manifest.input.height, manifest.input.width),
      mean: preprocess.mean,
      std: preprocess.std,
      scale: preprocess.scale,
      channelOrder: preprocess.channel_order,
      layout: manifest.input.layout,
      interpolation: preprocess.interpolation,
      ...(preprocess.pad_value === undefined ? {} : { padValue: typeof preprocess.pad_value === 'number' ? [preprocess.pad_value, preprocess.pad_value, preprocess.pad_value] : preprocess.pad_value }),
      quality: preprocess.quality,
    },
  };
}

/** `resize_size`, or what timm's `crop_pct` makes of a square input: floor(size / crop_pct). */
function resizeSizeOf(manifest: ModelManifest): number | undefined {
  const { preprocess, input, name } = manifest;
  if (preprocess.crop_pct === undefined) return preprocess.resize_size;
  const field = 'preprocess.crop_pct';
  if (preprocess.resize_size !== undefined) throw new ModelError(`model "${name}": give preprocess.resize_size or preprocess.crop_pct, not both`, [{ field, message: 'with resize_size' }]);
  if (preprocess.resize_mode !== 'shorter_side') throw new ModelError(`model "${name}": preprocess.crop_pct goes with resize_mode shorter_side`, [{ field, message: `resize_mode is ${preprocess.resize_mode}` }]);
  if (input.height !== input.width) throw new ModelError(`model "${name}": preprocess.crop_pct needs a square input (timm resizes non-square ones otherwise)`, [{ field, message: `input is ${input.width}x${input.height}` }]);
  return Math.floor(input.height / preprocess.crop_pct);
}

async function readText(path: string, where: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new ModelError(`${where}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, [{ field: path, message: 'unreadable' }]);
  }
}
