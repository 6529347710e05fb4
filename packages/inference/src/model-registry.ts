import { modelLabels } from '@visionq/api';
import type { PreprocessSpec } from '@visionq/imaging';
import { ModelCatalog, modelNotFound, type CatalogChanges, type ModelFolder, type ModelManifest, type ModelMetrics } from '@visionq/models';
import type { Logger } from '@visionq/observability';
import { checkGraph } from './graph-check';
import { onnxSessionBackend, type Session, type SessionBackend } from './session-backend';
import type { SessionSettings } from './session-settings';

/** A model version ready to serve: its declared contract, labels and a live session. */
export interface LoadedModel {
  /** `name@version`. */
  ref: string;
  name: string;
  version: string;
  dir: string;
  /** The folder's stamp when it was loaded: a reload replaces the version when it changes. */
  stamp: string;
  manifest: ModelManifest;
  labels: string[];
  spec: PreprocessSpec;
  metrics?: ModelMetrics;
  session: Session;
  /** The graph's fixed batch size; undefined when the batch axis is dynamic. */
  fixedBatchSize?: number;
}

/** How `visionq models` describes a loaded version. */
export interface ModelDescription {
  name: string;
  version: string;
  ref: string;
  description?: string;
  input: { name: string; shape: Array<number | string> };
  classes: number;
  provider: string;
  /** `metrics.json`, as written. */
  metrics?: ModelMetrics;
}

export interface RegistryLoadOptions {
  /** Load only these models: `NAME` (every version) or `NAME@VERSION`; others are still read and checked. Default: all. */
  only?: string[];
  logger: Logger;
  /** Where sessions come from. Default: onnxruntime (`onnxSessionBackend`). */
  backend?: SessionBackend;
  /** Takes a version that fails to load, which is then skipped; without it, any failure is an error. */
  onRefused?: (folder: ModelFolder, err: Error) => void;
}

/** Told of each version before it serves (warm-up) and after its last use (drop its batcher). */
export interface RegistryHooks {
  loaded?(model: LoadedModel): Promise<void>;
  retired?(model: LoadedModel): Promise<void>;
}

/**
 * The model versions one process serves, from the catalog of its models directory. Each
 * manifest is checked against its ONNX graph before anything is served. The registry owns
 * the sessions: a version replaced or removed stops taking new work at once, and its
 * session is released only when the work that took it (`use`) has finished.
 */
export class ModelRegistry {
  private readonly models = new Map<string, LoadedModel>();
  /** Work in flight per version, and what waits for a retired version's last one. */
  private readonly users = new Map<LoadedModel, number>();
  private readonly idle = new Map<LoadedModel, () => void>();
  private readonly retiring = new Set<Promise<void>>();
  hooks: RegistryHooks = {};

  private constructor(
    readonly catalog: ModelCatalog,
    private readonly settings: SessionSettings,
    private readonly options: RegistryLoadOptions,
  ) {}

  /** Loads every wanted version; one that fails is an error (and nothing stays loaded), unless `onRefused` takes it and another loads. */
  static async load(source: ModelCatalog | string, settings: SessionSettings, options: RegistryLoadOptions): Promise<ModelRegistry> {
    const catalog = typeof source === 'string' ? await ModelCatalog.load(source) : source;
    const all = catalog.all();
    for (const spec of options.only ?? []) {
      if (!all.some((f) => f.name === spec || f.ref === spec)) throw modelNotFound(spec, all.map((f) => f.ref));
    }
    const registry = new ModelRegistry(catalog, settings, options);
    try {
      let first: Error | undefined;
      for (const folder of all.filter((f) => registry.wanted(f))) {
        try {
          registry.models.set(folder.ref, await registry.open(folder));
        } catch (err) {
          if (!options.onRefused) throw err;
          first ??= err as Error;
          options.onRefused(folder, err as Error);
        }
      }
      if (registry.models.size === 0 && first) throw first;
    } catch (err) {
      await registry.release();
      throw err;
    }
    return registry;
  }

  /** The version `spec` names (`NAME@VERSION`, or `NAME` for its default version); `model_not_found` when not loaded here. */
  get(spec: string | undefined): LoadedModel {
    const exact = spec === undefined ? undefined : this.models.get(spec);
    if (exact) return exact;
    let ref: string | undefined;
    try {
      ref = this.catalog.resolve(spec).ref;
    } catch {
      ref = undefined;
    }
    const model = ref === undefined ? undefined : this.models.get(ref);
    if (!model) throw modelNotFound(spec ?? '(default)', [...this.models.keys()]);
    return model;
  }

  /** Runs `work` with the version `spec` names; while it runs, that version's session is not released. */
  async use<T>(spec: string, work: (model: LoadedModel) => Promise<T>): Promise<T> {
    const model = this.get(spec);
    this.users.set(model, (this.users.get(model) ?? 0) + 1);
    try {
      return await work(model);
    } finally {
      const left = this.users.get(model)! - 1;
      if (left > 0) this.users.set(model, left);
      else {
        this.users.delete(model);
        this.idle.get(model)?.();
      }
    }
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
        ref: m.ref,
        ...(m.manifest.description ? { description: m.manifest.description } : {}),
        input: { name: input.name, shape: input.shape },
        classes: m.labels.length,
        provider: m.session.provider,
        ...(m.metrics ? { metrics: m.metrics } : {}),
      };
    });
  }

  /**
   * Applies a catalog reload: loads new versions and replaces changed ones (the old session
   * finishes its work first). A version that fails to load is refused with a log line and
   * leaves what was served as it was. Returns the refs now served that were not, and those
   * gone from the catalog: the caller stops taking their work, then calls `remove`.
   */
  async sync(changes: CatalogChanges): Promise<{ added: string[]; gone: string[] }> {
    const added: string[] = [];
    for (const folder of [...changes.added, ...changes.replaced]) {
      if (!this.wanted(folder)) continue;
      let model: LoadedModel;
      try {
        model = await this.open(folder);
      } catch (err) {
        this.options.logger.error('model version refused: it does not load; what was served stays', { model: folder.ref, dir: folder.dir, error: (err as Error).message });
        continue;
      }
      const old = this.models.get(folder.ref);
      this.models.set(folder.ref, model);
      if (old) {
        this.options.logger.info('model version replaced: new work goes to the new files; the old session finishes its batches', { model: folder.ref });
        this.retire(old);
      } else {
        added.push(folder.ref);
      }
    }
    return { added, gone: changes.removed.map((f) => f.ref).filter((ref) => this.models.has(ref)) };
  }

  /** Stops serving `ref`; resolves once its work in flight has finished and its session is released. */
  async remove(ref: string): Promise<void> {
    const model = this.models.get(ref);
    if (!model) return;
    this.models.delete(ref);
    await this.retire(model);
  }

  /** Releases every session, waiting for those retiring. Idempotent. */
  async release(): Promise<void> {
    await Promise.all([...this.retiring]);
    await Promise.all(this.list().map((m) => m.session.release()));
  }

  private wanted(folder: ModelFolder): boolean {
    return !this.options.only || this.options.only.some((spec) => spec === folder.name || spec === folder.ref);
  }

  private async open(folder: ModelFolder): Promise<LoadedModel> {
    const session = await (this.options.backend ?? onnxSessionBackend).create(folder, this.settings);
    const model: LoadedModel = {
      ref: folder.ref,
      name: folder.name,
      version: folder.version,
      dir: folder.dir,
      stamp: folder.stamp,
      manifest: folder.manifest,
      labels: folder.labels,
      spec: folder.spec,
      ...(folder.metrics ? { metrics: folder.metrics } : {}),
      session,
    };
    try {
      Object.assign(model, checkGraph(folder.manifest, folder.labels.length, session.inputs, session.outputs));
      for (const fallback of session.fallbacks) {
        this.options.logger.warn('execution provider unavailable, falling back', { ...modelLabels(model.ref), provider: fallback.provider, reason: fallback.reason });
      }
      await this.hooks.loaded?.(model);
    } catch (err) {
      await session.release();
      throw err;
    }
    this.options.logger.info('model loaded', { ...modelLabels(model.ref), provider: session.provider });
    return model;
  }

  private retire(model: LoadedModel): Promise<void> {
    const done = (async () => {
      if (this.users.has(model)) await new Promise<void>((resolve) => this.idle.set(model, resolve));
      this.idle.delete(model);
      await this.hooks.retired?.(model);
      await model.session.release();
      this.options.logger.info('model version released', { ...modelLabels(model.ref) });
    })();
    this.retiring.add(done);
    void done.finally(() => this.retiring.delete(done));
    return done;
  }
}
