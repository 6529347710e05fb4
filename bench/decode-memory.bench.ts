/**
 * Decode-memory suite: the same burst of large PNGs decoded at once by two fresh
 * processes, one with DECODE_PIXELS_IN_FLIGHT at one image's pixels, one unbounded;
 * each reports its peak resident memory. The ratio is what the budget saves.
 */
import { spawnSync } from 'node:child_process';
import type { BenchResult } from './main';

const WIDTH = 8000;
const HEIGHT = 6000;
const IMAGES = 8;

/** Run as a child: decodes IMAGES copies at once and prints its peak RSS in MB. */
async function child(budget: number | undefined): Promise<void> {
  const sharp = (await import('sharp')).default;
  const { IMAGENET_SPEC, ImagePreprocessor } = await import('@visionq/imaging');
  const noise = Buffer.alloc(WIDTH * HEIGHT * 3);
  for (let i = 0; i < noise.length; i += 97) noise[i] = i & 0xff;
  const png = await sharp(noise, { raw: { width: WIDTH, height: HEIGHT, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
  const preprocessor = new ImagePreprocessor({ maxImageBytes: 1 << 30, maxImagePixels: 1e9, decodePixelsInFlight: budget });
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  const before = process.memoryUsage().rss;
  const started = performance.now();
  await Promise.all(Array.from({ length: IMAGES }, () => preprocessor.preprocess(png, IMAGENET_SPEC)));
  clearInterval(timer);
  process.stdout.write(JSON.stringify({ before_mb: Math.round(before / 2 ** 20), peak_mb: Math.round(peak / 2 ** 20), s: Number(((performance.now() - started) / 1000).toFixed(2)) }));
}

export async function runDecodeMemoryBench(): Promise<BenchResult> {
  const run = (budget?: number) => {
    const out = spawnSync(process.execPath, ['--import', 'tsx', __filename, 'child', String(budget ?? '')], { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (out.status !== 0) throw new Error(out.stderr);
    return JSON.parse(out.stdout) as { before_mb: number; peak_mb: number; s: number };
  };
  const bounded = run(WIDTH * HEIGHT);
  const unbounded = run();
  process.stderr.write(`${IMAGES} × ${WIDTH}x${HEIGHT} PNG at once: budget of one image ${JSON.stringify(bounded)}, unbounded ${JSON.stringify(unbounded)}\n`);
  return {
    suite: 'decode-memory',
    figures: { images: IMAGES, megapixels: (WIDTH * HEIGHT) / 1e6, bounded_peak_mb: bounded.peak_mb, unbounded_peak_mb: unbounded.peak_mb, bounded_s: bounded.s, unbounded_s: unbounded.s },
    ratios: { bounded_vs_unbounded_peak_rss: Number(((bounded.peak_mb - bounded.before_mb) / (unbounded.peak_mb - unbounded.before_mb)).toFixed(3)) },
  };
}

if (process.argv[2] === 'child') void child(process.argv[3] ? Number(process.argv[3]) : undefined);
