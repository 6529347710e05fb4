import type { PreprocessSpec } from '@visionq/imaging';
import { modelNotFound, readModelCatalog, type ModelManifest } from '@visionq/models';
import type { Logger } from '@visionq/observability';
import { checkGraph } from './graph-check';
import { onnxSessionBackend, type Session, type SessionBackend } from './session-backend';
import type { SessionSettings } from './session-settings';

/** A model ready to serve: its declared contract, labels and a live session. */
export interface LoadedModel {
  name: string;
  version: string;
  dir: string;
  manifest: ModelManifest;
  labels: string[];
  spec: PreprocessSpec;
  session: Session;
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
  /** Where sessions come from. Default: onnxruntime (`onnxSessionBackend`). */
  backend?: SessionBackend;
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
    const backend = options.backend ?? onnxSessionBackend;
    const models = new Map<string, LoadedModel>();
    try {
      for (const folder of byName.values()) {
        if (options.only && !options.only.includes(folder.manifest.name)) continue;
        const session = await backend.create(folder, settings);
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
