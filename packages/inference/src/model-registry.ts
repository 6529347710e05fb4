import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, ModelError, VisionqError } from '@visionq/errors';
import type { PreprocessSpec } from '@visionq/imaging';
import type { Logger } from '@visionq/observability';
import { checkGraph } from './graph-check';
import { readModelFolder, type ModelFolder } from './model-folder';
import type { ModelManifest } from './model-manifest';
import { ModelSession } from './model-session';
import type { SessionSettings } from './session-settings';

/** A model ready to serve: its declared contract, labels and a live session. */
export interface LoadedModel {
  name: string;
  version: string;
  dir: string;
  manifest: ModelManifest;
  labels: string[];
  spec: PreprocessSpec;
  session: ModelSession;
  /** The graph's fixed batch size; undefined when the batch axis is dynamic. */
  fixedBatchSize?: number;
}

/** How `GET /models` and `visionq models` describe a model. */
export interface ModelDescription {
  name: string;
  version: string;
  description?: string;
  input: { name: string; shape: Array<number | string> };
  classes: number;
  provider: string;
}

export interface RegistryLoadOptions {
  /** Load only these model names (others are still read and checked). Default: all. */
  only?: string[];
  logger: Logger;
}

/**
 * Every model under one models directory. Each sub-folder holding a `manifest.json` is a
 * model; its manifest is checked against the ONNX graph before anything is served. The
 * registry owns the sessions and releases them in `release()`.
 */
export class ModelRegistry {
  private constructor(private readonly models: Map<string, LoadedModel>) {}

  static async load(modelsDir: string, settings: SessionSettings, options: RegistryLoadOptions): Promise<ModelRegistry> {
    const byName = new Map((await readModelCatalog(modelsDir)).map((folder) => [folder.manifest.name, folder]));
    for (const name of options.only ?? []) {
      if (!byName.has(name)) throw modelNotFound(name, [...byName.keys()]);
    }
    const models = new Map<string, LoadedModel>();
    try {
      for (const folder of byName.values()) {
        if (options.only && !options.only.includes(folder.manifest.name)) continue;
        const session = await ModelSession.create(folder.modelPath, settings);
        const model: LoadedModel = {
          name: folder.manifest.name,
          version: folder.manifest.version,
          dir: folder.dir,
          manifest: folder.manifest,
          labels: folder.labels,
          spec: folder.spec,
          session,
        };
        models.set(model.name, model);
        Object.assign(model, checkGraph(folder.manifest, folder.labels.length, session.inputs, session.outputs));
        for (const fallback of session.fallbacks) {
          options.logger.warn('execution provider unavailable, falling back', { model: model.name, provider: fallback.provider, reason: fallback.reason });
        }
        options.logger.info('model loaded', { model: model.name, version: model.version, provider: session.provider });
      }
    } catch (err) {
      await Promise.all([...models.values()].map((m) => m.session.release()));
      throw err;
    }
    return new ModelRegistry(models);
  }

  /** The model called `name`; `model_not_found` when none is loaded under that name. */
  get(name: string): LoadedModel {
    const model = this.models.get(name);
    if (!model) throw modelNotFound(name, [...this.models.keys()]);
    return model;
  }

  list(): LoadedModel[] {
    return [...this.models.values()];
  }

  describe(): ModelDescription[] {
    return this.list().map((m) => {
      const input = m.session.inputs.find((i) => i.name === m.manifest.input.name)!;
      return {
        name: m.name,
        version: m.version,
        ...(m.manifest.description ? { description: m.manifest.description } : {}),
        input: { name: input.name, shape: input.shape },
        classes: m.labels.length,
        provider: m.session.provider,
      };
    });
  }

  async release(): Promise<void> {
    await Promise.all(this.list().map((m) => m.session.release()));
  }
}

/**
 * Every model folder of `modelsDir`, read and checked, without loading a graph: what a
 * gateway needs to validate requests while only workers hold sessions.
 */
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
