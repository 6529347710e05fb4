// Bundles the console into dist/: index.html and content-hashed assets (the gateway caches those for long).
import { readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { build } from 'esbuild';

const dist = join(import.meta.dirname, 'dist');
await rm(dist, { recursive: true, force: true });
const { metafile } = await build({
  entryPoints: ['main.ts', 'console.css'].map((file) => join(import.meta.dirname, 'src', file)),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  entryNames: '[name]-[hash]',
  outdir: dist,
  metafile: true,
  logLevel: 'warning',
});
const outputs = Object.keys(metafile.outputs).map((path) => basename(path));
const asset = (ext) => outputs.find((name) => name.endsWith(ext));

const page = await readFile(join(import.meta.dirname, 'src', 'index.html'), 'utf8');
await writeFile(join(dist, 'index.html'), page.replace('{{script}}', asset('.js')).replace('{{style}}', asset('.css')));
