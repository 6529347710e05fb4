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
  if (preprocess.resize_mode === 'shorter_side') {
    const size = preprocess.resize_size;
    if (size === undefined || size < Math.max(manifest.input.height, manifest.input.width)) {
      throw new ModelError(`model "${manifest.name}": preprocess.resize_size must be at least the input size when resize_mode is shorter_side`, [
        { field: 'preprocess.resize_size', message: `got ${size ?? 'nothing'}` },
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
      resizeSize: preprocess.resize_size ?? Math.max(manifest.input.height, manifest.input.width),
      mean: preprocess.mean,
      std: preprocess.std,
      scale: preprocess.scale,
      channelOrder: preprocess.channel_order,
      interpolation: preprocess.interpolation,
      quality: preprocess.quality,
    },
  };
}

async function readText(path: string, where: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new ModelError(`${where}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, [{ field: path, message: 'unreadable' }]);
  }
}
