import { availableParallelism } from 'node:os';
import sharp from 'sharp';

/** Node's default size of libuv's thread pool, where every sharp decode runs. */
const LIBUV_DEFAULT_THREADS = 4;

/**
 * Settings for a long-running service: libvips' operation cache only grows memory when
 * every image is new, and `threadsPerImage` bounds the threads one decode takes, so
 * several decodes on libuv's pool do not oversubscribe the cores inference needs.
 *
 * `concurrentDecodes` (0 = one per CPU) sizes libuv's pool so that many decodes can run at
 * once (its default, 4, would hold a 16-core box to 4), plus the default 4 for file and DNS
 * work, unless UV_THREADPOOL_SIZE is set. libuv reads the variable when its pool first
 * starts, so call this before any asynchronous file, DNS or sharp work.
 */
export function configureDecoder(options: { threadsPerImage: number; concurrentDecodes?: number }): void {
  sharp.cache(false);
  sharp.concurrency(options.threadsPerImage);
  if (options.concurrentDecodes !== undefined && process.env.UV_THREADPOOL_SIZE === undefined) {
    const decodes = options.concurrentDecodes === 0 ? availableParallelism() : options.concurrentDecodes;
    process.env.UV_THREADPOOL_SIZE = String(Math.min(1024, decodes + LIBUV_DEFAULT_THREADS));
  }
}
