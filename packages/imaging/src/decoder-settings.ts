import sharp from 'sharp';

/**
 * Settings for a long-running service: libvips' operation cache only grows memory when
 * every image is new, and `threadsPerImage` bounds the threads one decode takes, so
 * several decodes on libuv's pool do not oversubscribe the cores inference needs.
 */
export function configureDecoder(options: { threadsPerImage: number }): void {
  sharp.cache(false);
  sharp.concurrency(options.threadsPerImage);
}
