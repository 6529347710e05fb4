/**
 * Loads the bundled model the way a worker does (ModelSession, the providers of
 * EXECUTION_PROVIDERS with the CPU as the last resort, CUDA_DEVICE_ID), runs one batch,
 * and exits 0 only when the session runs on CUDA. A CUDA provider that cannot load does
 * not fail a worker, it falls back to the CPU with a warning; here that fallback is the
 * failure, with onnxruntime's reason, so a GPU check can never pass on the CPU.
 */
import { join } from 'node:path';
import { loadConfig } from '@visionq/config';
import { ModelSession } from '@visionq/inference';
import { readModelFolder } from '@visionq/models';

const BATCH = 16;

async function main(): Promise<void> {
  const { inference } = loadConfig();
  if (inference.providers[0] !== 'cuda') throw new Error(`EXECUTION_PROVIDERS must start with cuda, got ${inference.providers.join(',')}`);
  const folder = await readModelFolder(join(__dirname, '..', '..', 'models', 'fashion-vgg'));
  const session = await ModelSession.create(folder.modelPath, inference);
  try {
    for (const fallback of session.fallbacks) process.stderr.write(`gpu-check: ${fallback.provider} could not load: ${fallback.reason}\n`);
    if (session.provider !== 'cuda') throw new Error(`the session fell back to ${session.provider}: CUDA did not load (reason above)`);
    const { height, width } = folder.spec;
    const started = performance.now();
    const output = await session.run(folder.manifest.input.name, new Float32Array(BATCH * 3 * height * width), [BATCH, 3, height, width], folder.manifest.output.name);
    process.stdout.write(`gpu-check: ${folder.manifest.name} runs on cuda (device ${inference.deviceId}): a batch of ${BATCH} → [${output.dims.join(',')}] in ${Math.round(performance.now() - started)} ms, the first run\n`);
  } finally {
    await session.release();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`gpu-check: ${(err as Error).message}\n`);
  process.exit(1);
});
