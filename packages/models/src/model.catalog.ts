import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { compareVersions, ErrorCode, ModelError, modelRef, parseModelSpec, VisionqError, type ModelView } from '@visionq/api';
import { readModelFolder, type ModelFolder } from './model.folder';
import { VERSION } from './model.manifest';

/** A model version as its folder declares it, before any worker reports serving it. */
export type DeclaredModel = Omit<ModelView, 'workers' | 'providers'>;

/** A folder left out, and why: it is logged, and what was served from it before stays served. */
export interface RefusedFolder {
  dir: string;
  error: ModelError;
}

/** What a reload found different from what was served. */
export interface CatalogChanges {
  added: ModelFolder[];
  /** The new folders of versions whose files changed. */
  replaced: ModelFolder[];
  removed: ModelFolder[];
  refused: RefusedFolder[];
  /** Models whose default version changed, `name → version`. */
  defaults: Map<string, string>;
}

/** `models/NAME/model.json`: what is shared by the versions of one model. */
const modelSettingsSchema = z.strictObject({ default_version: z.string().regex(VERSION).optional() });

/**
 * The model versions a request may name, read from a models directory without loading a
 * graph. Layout: `models/NAME/VERSION/` (manifest, graph, labels, optional metrics), the
 * default version set by `models/NAME/model.json` (`{"default_version": "2"}`) or else the
 * newest; a flat `models/NAME/` holding a manifest is one version (the manifest's, or `1`).
 * Folders whose names start with "." are being written and are skipped.
 *
 * The gateway validates requests against it; workers load the graphs of the same folders.
 * `reload()` reads the directory again: new versions appear, removed ones go, a folder that
 * fails its checks is refused and leaves what was served from it as it was.
 */
export class ModelCatalog {
  private constructor(
    readonly modelsDir: string,
    /** `DEFAULT_MODEL`: what a request naming no model gets (`NAME` or `NAME@VERSION`). */
    readonly defaultModel: string | undefined,
    private folders: Map<string, ModelFolder>,
    private defaults: Map<string, string>,
  ) {}

  /**
   * Reads every folder. A refused folder is an error, unless `onRefused` takes it (a
   * service starts with the others, as a reload would); so is a default model not found.
   */
  static async load(modelsDir: string, defaultModel?: string, onRefused?: (refused: RefusedFolder) => void): Promise<ModelCatalog> {
    const scanned = await scanModelsDir(modelsDir);
    const defaults = defaultVersions(scanned.folders, scanned.settings, scanned.refused);
    if (scanned.refused.length > 0 && (!onRefused || scanned.folders.length === 0)) throw scanned.refused[0]!.error;
    scanned.refused.forEach((r) => onRefused!(r));
    const catalog = new ModelCatalog(modelsDir, defaultModel, byRef(scanned.folders), defaults);
    if (defaultModel !== undefined) catalog.resolve(defaultModel);
    return catalog;
  }

  /** Reads the directory again; what changed is applied and returned. Never throws for a folder's own fault. */
  async reload(): Promise<CatalogChanges> {
    const scanned = await scanModelsDir(this.modelsDir);
    const next = byRef(scanned.folders);
    // A version whose folder is now refused keeps being served as it was read before.
    for (const { dir } of scanned.refused) {
      for (const folder of this.folders.values()) if (folder.dir === dir && !next.has(folder.ref)) next.set(folder.ref, folder);
    }
    const changes: CatalogChanges = { added: [], replaced: [], removed: [], refused: scanned.refused, defaults: new Map() };
    for (const [ref, folder] of next) {
      const before = this.folders.get(ref);
      if (!before) changes.added.push(folder);
      else if (before.stamp !== folder.stamp || before.dir !== folder.dir) changes.replaced.push(folder);
    }
    for (const [ref, folder] of this.folders) if (!next.has(ref)) changes.removed.push(folder);
    const defaults = defaultVersions([...next.values()], scanned.settings, changes.refused);
    for (const [name, version] of defaults) if (this.defaults.get(name) !== version) changes.defaults.set(name, version);
    this.folders = next;
    this.defaults = defaults;
    return changes;
  }

  /** The version `spec` names (`NAME` is its default version; nothing is the default model); `model_not_found` otherwise. */
  resolve(spec: string | undefined): ModelFolder {
    const wanted = spec ?? this.defaultModel;
    if (wanted === undefined) throw new VisionqError(ErrorCode.InvalidArgument, 'name a model: this deployment has no DEFAULT_MODEL', [{ field: 'model', message: 'required' }]);
    const { name, version } = parseModelSpec(wanted);
    const chosen = version ?? this.defaults.get(name);
    const folder = chosen === undefined ? undefined : this.folders.get(modelRef(name, chosen));
    if (!folder) throw modelNotFound(wanted, [...this.folders.keys()]);
    return folder;
  }

  /** Every version, by name then version. */
  all(): ModelFolder[] {
    return [...this.folders.values()].sort((a, b) => a.name.localeCompare(b.name) || compareVersions(a.version, b.version));
  }

  has(ref: string): boolean {
    return this.folders.has(ref);
  }

  list(): DeclaredModel[] {
    const fallback = this.defaultModel === undefined ? undefined : this.tryResolve(this.defaultModel)?.ref;
    return this.all().map(({ manifest, labels, name, version, ref, metrics }) => ({
      name,
      version,
      ref,
      ...(manifest.description ? { description: manifest.description } : {}),
      default: ref === fallback,
      default_version: this.defaults.get(name) === version,
      input: {
        name: manifest.input.name,
        shape: manifest.input.layout === 'NHWC' ? ['N', manifest.input.height, manifest.input.width, manifest.input.channels] : ['N', manifest.input.channels, manifest.input.height, manifest.input.width],
      },
      classes: labels.length,
      ...(metrics ? { metrics: summaryOf(metrics) } : {}),
    }));
  }

  private tryResolve(spec: string): ModelFolder | undefined {
    try {
      return this.resolve(spec);
    } catch {
      return undefined;
    }
  }
}

export function modelNotFound(name: string, known: string[]): VisionqError {
  return new VisionqError(ErrorCode.ModelNotFound, `model "${name}" is not served (served: ${known.join(', ') || 'none'})`, [{ field: 'model', message: 'unknown model' }]);
}

/** What `GET /models` shows of `metrics.json`; the confusion matrix stays in the file (it grows with the square of the classes). */
function summaryOf(metrics: NonNullable<ModelFolder['metrics']>): NonNullable<DeclaredModel['metrics']> {
  const { split, images, accuracy, cohen_kappa, per_class } = metrics;
  return Object.fromEntries(Object.entries({ split, images, accuracy, cohen_kappa, per_class }).filter(([, value]) => value !== undefined));
}

interface ScannedModels {
  folders: ModelFolder[];
  /** `model.json` of each versioned model that has one. */
  settings: Map<string, { dir: string; defaultVersion?: string }>;
  refused: RefusedFolder[];
}

async function scanModelsDir(modelsDir: string): Promise<ScannedModels> {
  let entries;
  try {
    entries = await readdir(modelsDir, { withFileTypes: true });
  } catch (err) {
    throw new ModelError(`models directory ${modelsDir} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, [{ field: 'MODELS_DIR', message: 'unreadable' }]);
  }
  const folders: ModelFolder[] = [];
  const refused: RefusedFolder[] = [];
  const settings = new Map<string, { dir: string; defaultVersion?: string }>();
  const refuse = (dir: string, err: unknown) => {
    if (!(err instanceof ModelError)) throw err;
    refused.push({ dir, error: err });
  };
  for (const name of visibleDirs(entries)) {
    const dir = join(modelsDir, name);
    const files = await readdir(dir, { withFileTypes: true }).catch(() => []);
    if (files.some((f) => f.name === 'manifest.json')) {
      await readModelFolder(dir).then((f) => folders.push(f), (err) => refuse(dir, err));
      continue;
    }
    for (const version of visibleDirs(files)) {
      const versionDir = join(dir, version);
      if (!(await readdir(versionDir).catch((): string[] => [])).includes('manifest.json')) continue;
      if (!VERSION.test(version)) {
        refuse(versionDir, new ModelError(`model folder ${versionDir}: "${version}" is not a version name (letters, digits, ".", "_" and "-")`, [{ field: 'version', message: 'bad folder name' }]));
        continue;
      }
      await readModelFolder(versionDir, { name, version }).then((f) => folders.push(f), (err) => refuse(versionDir, err));
    }
    if (files.some((f) => f.name === 'model.json')) {
      await readSettings(join(dir, 'model.json')).then((s) => settings.set(name, { dir, ...s }), (err) => refuse(join(dir, 'model.json'), err));
    }
  }
  const unique = new Map<string, ModelFolder>();
  for (const folder of folders) {
    const other = unique.get(folder.ref);
    if (other) refuse(folder.dir, new ModelError(`model "${folder.ref}" is declared twice: ${other.dir} and ${folder.dir}`, [{ field: 'name', message: 'declared twice' }]));
    else unique.set(folder.ref, folder);
  }
  if (unique.size === 0 && refused.length === 0) {
    throw new ModelError(`models directory ${modelsDir} holds no model folder (NAME/VERSION/ or NAME/ with manifest.json and model.onnx)`, [{ field: 'MODELS_DIR', message: 'no models' }]);
  }
  return { folders: [...unique.values()], settings, refused };
}

/** Per model: the version `model.json` names, else the newest. A default naming a missing version is refused (the newest serves). */
function defaultVersions(folders: ModelFolder[], settings: ScannedModels['settings'], refused: RefusedFolder[]): Map<string, string> {
  const versions = new Map<string, string[]>();
  for (const f of folders) versions.set(f.name, [...(versions.get(f.name) ?? []), f.version]);
  const defaults = new Map<string, string>();
  for (const [name, list] of versions) {
    const wanted = settings.get(name)?.defaultVersion;
    if (wanted !== undefined && !list.includes(wanted)) {
      const path = join(settings.get(name)!.dir, 'model.json');
      if (!refused.some((r) => r.dir === path)) {
        refused.push({ dir: path, error: new ModelError(`${path}: default_version "${wanted}" is not a version of "${name}" (versions: ${list.join(', ')})`, [{ field: 'default_version', message: 'no such version' }]) });
      }
    }
    defaults.set(name, wanted !== undefined && list.includes(wanted) ? wanted : list.sort(compareVersions)[list.length - 1]!);
  }
  return defaults;
}

async function readSettings(path: string): Promise<{ defaultVersion?: string }> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new ModelError(`${path}: ${(err as Error).message}`, [{ field: 'model.json', message: 'unreadable or invalid JSON' }]);
  }
  const parsed = modelSettingsSchema.safeParse(json);
  if (!parsed.success) throw new ModelError(`${path}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`, [{ field: 'model.json', message: 'invalid' }]);
  return parsed.data.default_version === undefined ? {} : { defaultVersion: parsed.data.default_version };
}

function visibleDirs(entries: Array<{ name: string; isDirectory(): boolean }>): string[] {
  return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
}

function byRef(folders: ModelFolder[]): Map<string, ModelFolder> {
  return new Map(folders.map((f) => [f.ref, f]));
}
