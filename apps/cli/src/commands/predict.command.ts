import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { intAtLeast } from './arguments';
import { ErrorCode, imageError, VisionqError, type ImageResult } from '@visionq/api';
import type { ImageClassifier } from '@visionq/inference';
import { formatTable } from './result-table';

/** Files read and classified at once: enough to fill batches, few enough to keep memory flat. */
const FILES_IN_FLIGHT = 32;

export function registerPredict(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('predict')
    .description('classify image files locally and print the top classes of each')
    .argument('<files...>', 'image files (JPEG, PNG, WebP, AVIF, TIFF, GIF)')
    .option('-m, --model <name>', 'model to use (default: DEFAULT_MODEL)')
    .option('-k, --top-k <k>', 'classes per image', intAtLeast(1), 5)
    .option('--json', 'one JSON object per image on stdout')
    .option('--models-dir <dir>', 'models directory (default: MODELS_DIR)')
    .addHelpText('after', '\nExit status: 0 when every image was classified, 1 when any failed.')
    .action(async (files: string[], options: { model?: string; topK: number; json?: boolean; modelsDir?: string }) => {
      const runtime = await (await import('./runtime.js')).openRuntime({ modelsDir: options.modelsDir, model: options.model });
      try {
        const model = runtime.config.models.defaultModel;
        const results = mapInOrder(files, FILES_IN_FLIGHT, (file) => classifyFile(runtime.classifier, file, model, options.topK));
        let failed = 0;
        const table: ImageResult[] = [];
        for await (const result of results) {
          if ('error' in result) failed++;
          if (options.json) process.stdout.write(`${JSON.stringify(result)}\n`);
          else table.push(result);
        }
        if (!options.json) process.stdout.write(formatTable(table, model));
        setExitCode(failed > 0 ? 1 : 0);
      } finally {
        await runtime.close();
      }
    });
}

async function classifyFile(classifier: ImageClassifier, file: string, model: string, k: number): Promise<ImageResult> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return imageError(file, ErrorCode.ImageNotFound, `cannot read ${file}: ${code ?? (err as Error).message}`);
  }
  try {
    return await classifier.classify(file, bytes, model, k);
  } catch (err) {
    if (err instanceof VisionqError && err.code === ErrorCode.ModelNotFound) throw err;
    return imageError(file, err instanceof VisionqError ? err.code : ErrorCode.Internal, (err as Error).message);
  }
}

/** Runs `fn` over `items` with at most `limit` at once, yielding results in input order. */
async function* mapInOrder<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): AsyncGenerator<R> {
  const running: Promise<R>[] = [];
  let next = 0;
  while (next < items.length && running.length < limit) running.push(fn(items[next++]!));
  while (running.length > 0) {
    const result = await running.shift()!;
    if (next < items.length) running.push(fn(items[next++]!));
    yield result;
  }
}
