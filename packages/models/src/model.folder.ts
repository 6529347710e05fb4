import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelError, modelRef } from '@visionq/api';
import type { PreprocessSpec } from '@visionq/imaging';
import { manifestSchema, modelMetricsSchema, type ModelManifest, type ModelMetrics } from './model.manifest';

/** What a model folder declares, read and checked, before any session exists. */
export interface ModelFolder {
  dir: string;
  /** The model's name and this folder's version of it; `ref` is `name@version`. */
  name: string;
  version: string;
  ref: string;
  modelPath: string;
  manifest: ModelManifest;
  labels: string[];
  spec: PreprocessSpec;
  /** `metrics.json`, when the folder has one. */
  metrics?: ModelMetrics;
  /** Sizes and modification times of the folder's files: a reload replaces a version whose stamp changed. */
  stamp: string;
}

/** Where a version folder sits: `models/NAME/VERSION/` names its model and version. */
export interface FolderPlacement {
  name: string;
  version: string;
}

/**
 * Reads `manifest.json`, the labels file and `metrics.json` of the model folder `dir`.
 * Every problem is a ModelError naming the folder and the field. Without `placement` (a flat
 * folder) the manifest names the model, and its version is the manifest's or `1`.
 */
export async function readModelFolder(dir: string, placement?: FolderPlacement): Promise<ModelFolder> {
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
  if (placement && manifest.name !== placement.name) {
    throw new ModelError(`${where}: manifest.json names model "${manifest.name}", but the folder is a version of "${placement.name}"`, [{ field: 'name', message: `expected ${placement.name}` }]);
  }
  if (placement && manifest.version !== undefined && manifest.version !== placement.version) {
    throw new ModelError(`${where}: manifest.json says version "${manifest.version}", but the folder is version "${placement.version}"`, [{ field: 'version', message: `expected ${placement.version}` }]);
  }
  const version = placement?.version ?? manifest.version ?? '1';
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
  const modelPath = join(dir, 'model.onnx');
  const metrics = await readMetrics(join(dir, 'metrics.json'), where);
  return {
    dir,
    name: manifest.name,
    version,
    ref: modelRef(manifest.name, version),
    modelPath,
    manifest,
    labels,
    ...(metrics ? { metrics } : {}),
    stamp: await stampOf(where, [modelPath, join(dir, 'manifest.json'), join(dir, manifest.labels)], [join(dir, 'metrics.json')]),
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

async function readMetrics(path: string, where: string): Promise<ModelMetrics | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ModelError(`${where}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, [{ field: 'metrics.json', message: 'unreadable' }]);
  }
  let parsed;
  try {
    parsed = modelMetricsSchema.safeParse(JSON.parse(text));
  } catch (err) {
    throw new ModelError(`${where}: metrics.json is not valid JSON: ${(err as Error).message}`, [{ field: 'metrics.json', message: 'invalid JSON' }]);
  }
  if (!parsed.success) {
    const details = parsed.error.issues.map((i) => ({ field: `metrics.json ${i.path.join('.') || '(root)'}`, message: i.message }));
    throw new ModelError(`${where}: ${details.map((d) => `${d.field}: ${d.message}`).join('; ')}`, details);
  }
  return parsed.data;
}

/** Each file's size and mtime; `required` files must exist (`model.onnx` above all: a folder without it serves nothing). */
async function stampOf(where: string, required: string[], optional: string[]): Promise<string> {
  const parts: string[] = [];
  for (const path of [...required, ...optional]) {
    const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' && optional.includes(path)) return null;
      throw new ModelError(`${where}: cannot read ${path}: ${err.code ?? err.message}`, [{ field: path, message: 'unreadable' }]);
    });
    parts.push(info ? `${info.size}:${info.mtimeMs}` : '-');
  }
  return parts.join('|');
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
