import { readModelCatalog, modelNotFound, type ModelFolder } from '@visionq/inference';

/** A model as `GET /models` shows it. */
export interface ModelView {
  name: string;
  version: string;
  description?: string;
  default: boolean;
  input: { name: string; shape: Array<number | string> };
  classes: number;
}

/**
 * The models a request may name: the manifests of MODELS_DIR, read once at start. The
 * gateway never loads a graph; workers do, from the same folders.
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

  list(): ModelView[] {
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
