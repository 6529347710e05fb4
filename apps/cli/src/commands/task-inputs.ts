import { readdir, stat } from 'node:fs/promises';
import { extname, join, sep } from 'node:path';

/** What `visionq submit` was given: object URIs, one prefix to list, or local files. */
export type TaskInputs = { images: string[] } | { source: string } | { paths: string[] };

/** Extensions a folder is walked for: the formats the workers decode. */
const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.avif', '.tif', '.tiff', '.gif']);

/** Whether a file or object name has an image extension. */
export function hasImageExtension(name: string): boolean {
  return IMAGE_EXTENSIONS.has(extname(name).toLowerCase());
}

/** The image files under `dir`, sub-folders included, hidden files and folders left out, sorted. */
export async function imageFilesIn(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile() && hasImageExtension(e.name))
    .map((e) => join(e.parentPath, e.name))
    .filter((path) => !path.slice(dir.length).split(sep).some((part) => part.startsWith('.')))
    .sort();
}

/**
 * Sorts the arguments into one kind of input. A folder is walked, sub-folders included,
 * for files with an image extension; hidden files and folders are skipped. A file named
 * on its own is sent whatever its name: the gateway says what it cannot read.
 * Throws a message for the user when the arguments do not make one task.
 */
export async function resolveInputs(args: string[]): Promise<TaskInputs> {
  const uris = args.filter((a) => a.startsWith('s3://'));
  if (uris.length > 0) {
    if (uris.length < args.length) throw new Error('give either s3:// URIs or local files and folders, not both');
    const prefixes = uris.filter((u) => u.endsWith('/'));
    if (prefixes.length === 0) return { images: uris };
    if (uris.length > 1) throw new Error('an s3:// prefix (ending in "/") makes a task on its own');
    return { source: uris[0]! };
  }
  const paths: string[] = [];
  for (const arg of args) {
    const info = await stat(arg).catch(() => null);
    if (!info) throw new Error(`no file or folder ${arg}`);
    if (!info.isDirectory()) {
      paths.push(arg);
      continue;
    }
    const found = await imageFilesIn(arg);
    if (found.length === 0) throw new Error(`no image files in ${arg}`);
    paths.push(...found);
  }
  return { paths };
}
