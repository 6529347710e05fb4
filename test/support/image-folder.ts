import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { PHOTOS_DIR } from './model-fixtures';

/** Three classes, each cut from one real photo. */
export const CLASSES = { cat: 'chelsea.png', coffee: 'coffee.png', rocket: 'rocket.jpg' } as const;
/** A seeded generator, so the folder is the same on every run. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** Crops of each photo (random place and size, some flipped, brightness varied), JPEG and PNG mixed, at phone-thumbnail sizes. */
export async function writeImageFolder(dir: string, perClass: number, seed: number): Promise<void> {
  const next = random(seed);
  for (const [label, file] of Object.entries(CLASSES)) {
    await mkdir(join(dir, label), { recursive: true });
    const photo = sharp(join(PHOTOS_DIR, file));
    const { width, height } = await photo.metadata();
    for (let i = 0; i < perClass; i++) {
      const scale = 0.35 + 0.5 * next();
      const w = Math.round(width! * scale);
      const h = Math.round(height! * scale);
      let image = sharp(join(PHOTOS_DIR, file))
        .extract({ left: Math.floor(next() * (width! - w)), top: Math.floor(next() * (height! - h)), width: w, height: h })
        .resize(80 + Math.floor(next() * 80))
        .modulate({ brightness: 0.8 + 0.4 * next() });
      if (next() < 0.5) image = image.flop();
      await (i % 3 === 0 ? image.png() : image.jpeg({ quality: 85 })).toFile(join(dir, label, `${String(i).padStart(3, '0')}.${i % 3 === 0 ? 'png' : 'jpg'}`));
    }
  }
}
