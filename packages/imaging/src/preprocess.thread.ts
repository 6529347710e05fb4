/**
 * A preprocessing thread of ImagePreprocessor's pool (piscina): decodes and resizes one
 * image per task. Only the resulting pixels travel back (moved, not copied); an image's
 * own problem comes back as its code and message, to be thrown as an ImageError there.
 */
import { move } from 'piscina';
import { ImageError, type ErrorCode } from '@visionq/api';
import { configureDecoder } from './decoder-settings';
import { decodeAndResize, type CheckedHeader } from './image-decoder';
import type { PreprocessSpec } from './preprocess-spec';

export interface PreprocessTask {
  input: Uint8Array;
  header: CheckedHeader;
  spec: PreprocessSpec;
  maxImagePixels: number;
}

/** The spec's height × width × 3 pixels, or why this image cannot be used. */
export type PreprocessOutcome = Uint8Array | { code: ErrorCode; message: string };

// libvips' settings are per process, but a thread may be the first to load it.
configureDecoder({ threadsPerImage: 1 });

export default async function preprocess(task: PreprocessTask): Promise<PreprocessOutcome> {
  try {
    const image = await decodeAndResize(task.input, task.header, task.spec, task.maxImagePixels);
    return move(image.pixels) as Uint8Array;
  } catch (err) {
    if (err instanceof ImageError) return { code: err.code, message: err.message };
    throw err;
  }
}
