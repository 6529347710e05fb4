import { readFile, stat } from 'node:fs/promises';
import { ErrorCode, VisionqError } from '@visionq/api';
import type { Config } from '@visionq/config';
import { openObjectStore, parseObjectUri } from '@visionq/object-store';
import { hasImageExtension, imageFilesIn } from './task-inputs';

/** Images to calibrate on: a local folder (walked) or an S3 prefix (listed), read one at a time. */
export interface CalibrationSource {
  /** Paths or `s3://` URIs with an image extension, sorted. */
  images: string[];
  read(image: string): Promise<Buffer>;
  close(): void;
}

/** S3 listing page size. */
const PAGE = 1000;

/**
 * Opens `location`: `s3://bucket/prefix` through the object store the environment
 * configures (STORE, S3_ENDPOINT, … as the gateway and workers use), anything else as a
 * folder. No image is an invalid_argument naming the location.
 */
export async function openCalibrationSource(location: string, config: Config): Promise<CalibrationSource> {
  const maxBytes = config.imaging.maxImageBytes;
  if (location.startsWith('s3://')) {
    parseObjectUri(location);
    const store = openObjectStore(config.store);
    try {
      const images: string[] = [];
      let cursor: string | null = null;
      do {
        const page = await store.list(location, { cursor, limit: PAGE });
        images.push(...page.objects.map((o) => o.uri).filter(hasImageExtension));
        cursor = page.nextCursor;
      } while (cursor);
      if (images.length === 0) throw noImages(location);
      return { images, read: (uri) => store.getBytes(uri, maxBytes), close: () => store.close() };
    } catch (err) {
      store.close();
      throw err;
    }
  }
  const info = await stat(location).catch(() => null);
  if (!info?.isDirectory()) throw new VisionqError(ErrorCode.InvalidArgument, `--calibration ${location} is neither a folder nor an s3:// prefix`, [{ field: 'calibration', message: 'not found' }]);
  const images = await imageFilesIn(location);
  if (images.length === 0) throw noImages(location);
  return { images, read: (path) => readFile(path), close: () => {} };
}

function noImages(location: string): VisionqError {
  return new VisionqError(ErrorCode.InvalidArgument, `no images (.jpg, .png, .webp, …) in ${location}`, [{ field: 'calibration', message: 'no images' }]);
}

/**
 * Up to `samples` of `images`, spread evenly over the sorted list (so a folder sorted by
 * class gives every class a share), split into calibration and held-back images: every
 * fifth is held back (20 %), at least two and always leaving one to calibrate on.
 */
export function splitSamples(images: string[], samples: number): { calibration: string[]; heldBack: string[] } {
  const taken = images.length <= samples ? images : Array.from({ length: samples }, (_, i) => images[Math.floor((i * images.length) / samples)]!);
  if (taken.length < 3) throw new VisionqError(ErrorCode.InvalidArgument, `calibration needs at least 3 images, found ${taken.length}`, [{ field: 'calibration', message: 'too few images' }]);
  const heldBackCount = Math.max(2, Math.round(taken.length / 5));
  const stride = taken.length / heldBackCount;
  const held = new Set(Array.from({ length: heldBackCount }, (_, i) => Math.floor(i * stride + stride / 2)));
  return { calibration: taken.filter((_, i) => !held.has(i)), heldBack: taken.filter((_, i) => held.has(i)) };
}
