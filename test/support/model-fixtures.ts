import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeVggModelFolder, type VggModelFolderOptions } from '@visionq/vgg-builder';

/** A small VGG of torchvision's layout: fast enough for tests, real onnxruntime work. */
export const TINY_VGG: VggModelFolderOptions = { depth: 11, widthDivisor: 16, numClasses: 10, seed: 1, name: 'tiny-vgg' };

/** A fresh temporary models directory, removed by `cleanup`. */
export async function tempModelsDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'visionq-models-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Writes a VGG model folder `<modelsDir>/<name>` and returns its path. */
export async function writeModel(modelsDir: string, options: VggModelFolderOptions = TINY_VGG): Promise<string> {
  const dir = join(modelsDir, options.name ?? 'tiny-vgg');
  await writeVggModelFolder(dir, options);
  return dir;
}

/** Rewrites a model folder's manifest.json through `edit`. */
export async function editManifest(modelDir: string, edit: (manifest: Record<string, any>) => void): Promise<void> {
  const path = join(modelDir, 'manifest.json');
  const manifest = JSON.parse(await readFile(path, 'utf8'));
  edit(manifest);
  await writeFile(path, JSON.stringify(manifest, null, 2));
}

export const REPO_ROOT = join(__dirname, '..', '..');
export const PHOTOS_DIR = join(REPO_ROOT, 'test', 'fixtures', 'photos');
export const FASHION_DIR = join(REPO_ROOT, 'test', 'fixtures', 'fashion-mnist');
/** One real Fashion-MNIST test image (an ankle boot, class 9): the image most tests send. */
export const ANKLE_BOOT_PNG = join(FASHION_DIR, '0000-ankle_boot.png');
export const BUNDLED_MODELS_DIR = join(REPO_ROOT, 'models');
