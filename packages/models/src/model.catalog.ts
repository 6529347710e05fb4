import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, ModelError, VisionqError, type ModelView } from '@visionq/api';
import { readModelFolder, type ModelFolder } from './model.folder';

/** A model as its folder declares it, before any worker reports serving it. */
export type DeclaredModel = Omit<ModelView, 'workers' | 'providers'>;

/**
 * The models a request may name: the manifests of a models directory, read once. The
 * gateway validates requests against it without loading a graph; workers load the
 * graphs of the same folders.
 */
export class ModelCatalog {
  private constructor(
    private readonly models: Map<string, ModelFolder>,
    readonly defaultModel: string,
  ) {}

  static async load(modelsDir: string, defaultModel: string): Promise<ModelCatalog> {
    const models = new Map((await readModelCatalog(modelsDir)).map((m) => [m.manifest.name, m]));
    if (!models.has(defaultModel)) throw modelNotFound(defaultModel, [...models.keys()]);
    return new ModelCatalog(models, defaultModel);
  }

  /** The model `name` (or the default); `model_not_found` otherwise. */
  get(name: string | undefined): ModelFolder {
    const model = this.models.get(name ?? this.defaultModel);
    if (!model) throw modelNotFound(name!, [...this.models.keys()]);
    return model;
  }

  list(): DeclaredModel[] {
    return [...this.models.values()].map(({ manifest, labels }) => ({
      name: manifest.name,
      version: manifest.version,
      ...(manifest.description ? { description: manifest.description } : {}),
      default: manifest.name === this.defaultModel,
      input: { name: manifest.input.name, shape: ['N', manifest.input.channels, manifest.input.height, manifest.input.width] },
      classes: labels.length,
    }));
  }
}

/** Every model folder of `modelsDir`, read and checked, without loading a graph. */
export async function readModelCatalog(modelsDir: string): Promise<ModelFolder[]> {
  const declared = await Promise.all((await modelFolders(modelsDir)).map((dir) => readModelFolder(dir)));
  const byName = new Map<string, ModelFolder>();
  for (const folder of declared) {
    const other = byName.get(folder.manifest.name);
    if (other) throw new ModelError(`model "${folder.manifest.name}" is declared twice: ${other.dir} and ${folder.dir}`);
    byName.set(folder.manifest.name, folder);
  }
  return [...byName.values()];
}

export function modelNotFound(name: string, known: string[]): VisionqError {
  return new VisionqError(ErrorCode.ModelNotFound, `model "${name}" is not served (served: ${known.join(', ') || 'none'})`, [{ field: 'model', message: 'unknown model' }]);
}

async function modelFolders(modelsDir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(modelsDir, { withFileTypes: true });
  } catch (err) {
    throw new ModelError(`models directory ${modelsDir} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, [{ field: 'MODELS_DIR', message: 'unreadable' }]);
  }
  const dirs = entries.filter((e) => e.isDirectory()).map((e) => join(modelsDir, e.name)).sort();
  const withManifest: string[] = [];
  for (const dir of dirs) {
    const files = await readdir(dir);
    if (files.includes('manifest.json')) withManifest.push(dir);
  }
  if (withManifest.length === 0) throw new ModelError(`models directory ${modelsDir} holds no model folder (a folder with manifest.json and model.onnx)`, [{ field: 'MODELS_DIR', message: 'no models' }]);
  return withManifest;
}
