import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';

/** Op types of the graph onnxruntime runs for `model` after its optimisations (its fusions into integer kernels included). */
export async function optimizedOps(model: Uint8Array): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'optimized-ops-'));
  try {
    const optimized = join(dir, 'optimized.onnx');
    const session = await ort.InferenceSession.create(model, { optimizedModelFilePath: optimized, logSeverityLevel: 3 });
    await session.release();
    return onnx.ModelProto.decode(await readFile(optimized)).graph!.node!.map((n) => n.opType!);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
