import { watch, type FSWatcher } from 'node:fs';

export interface ModelWatchOptions {
  /** Watch the directory tree; without it only `reload()` (SIGHUP) reloads. */
  watch: boolean;
  /** Quiet time after the last change before reloading: a folder being copied settles first. */
  debounceMs: number;
  onError: (err: Error) => void;
}

/** Reloads on demand and on changes under the models directory, one reload at a time. */
export interface ModelWatch {
  /** Resolves once a reload that began after this call has finished. */
  reload(): Promise<void>;
  close(): void;
}

/**
 * Runs `apply` (read the directory again, load and retire versions) after changes under
 * `dir` settle, and whenever `reload()` is called. Reloads never overlap: a request during
 * one queues exactly one more.
 */
export function watchModels(dir: string, apply: () => Promise<void>, options: ModelWatchOptions): ModelWatch {
  let running: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const run = async (): Promise<void> => {
    try {
      await apply();
    } catch (err) {
      options.onError(err as Error);
    }
  };
  const reload = (): Promise<void> => {
    if (closed) return Promise.resolve();
    if (!running) {
      running = run().finally(() => (running = undefined));
      return running;
    }
    queued ??= running.then(() => {
      queued = undefined;
      return reload();
    });
    return queued;
  };

  let watcher: FSWatcher | undefined;
  if (options.watch) {
    try {
      watcher = watch(dir, { recursive: true }, () => {
        clearTimeout(timer);
        timer = setTimeout(() => void reload(), options.debounceMs);
      });
      watcher.on('error', (err) => options.onError(new Error(`watching ${dir} stopped (SIGHUP still reloads): ${err.message}`)));
    } catch (err) {
      options.onError(new Error(`cannot watch ${dir} (SIGHUP still reloads): ${(err as Error).message}`));
    }
  }

  return {
    reload,
    close() {
      closed = true;
      clearTimeout(timer);
      watcher?.close();
    },
  };
}
