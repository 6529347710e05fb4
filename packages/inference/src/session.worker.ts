/**
 * Session thread: owns one onnxruntime InferenceSession. onnxruntime-node's `run()`
 * blocks its thread for the whole inference, so it lives here, never on the thread that
 * renews queue locks and answers health checks. Requests are handled one at a time in
 * arrival order.
 */
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { CreatedReply, SessionReply, SessionRequest, TensorInfo } from './session-protocol';
import type { ExecutionProviderName } from '@visionq/config';
import { onnxSessionOptions, type SessionSettings } from './session-settings';

if (!parentPort) throw new Error('session.worker must run in a worker thread');
const port = parentPort;
let session: ort.InferenceSession | undefined;

const reply = (message: SessionReply) => port.postMessage(message);

port.on('message', (request: SessionRequest) => {
  void handle(request);
});

async function handle(request: SessionRequest): Promise<void> {
  switch (request.kind) {
    case 'create':
      try {
        reply(await create(request.modelPath, request.settings));
      } catch (err) {
        reply({ kind: 'create_failed', message: errorMessage(err) });
      }
      return;
    case 'run':
      try {
        if (!session) throw new Error('session not created');
        const input = new ort.Tensor('float32', new Float32Array(request.input), request.dims);
        const results = await session.run({ [request.inputName]: input }, [request.outputName]);
        const output = results[request.outputName];
        if (!output || output.type !== 'float32') throw new Error(`output "${request.outputName}" is not a float32 tensor`);
        reply({ kind: 'result', id: request.id, output: output.data as Float32Array, dims: [...output.dims] });
        output.dispose();
      } catch (err) {
        reply({ kind: 'run_failed', id: request.id, message: errorMessage(err) });
      }
      return;
    case 'release':
      try {
        await session?.release();
      } finally {
        session = undefined;
        // Ends this thread from inside, between runs: terminating it from outside while
        // onnxruntime is in native code aborts the whole process.
        port.close();
      }
      return;
  }
}

/**
 * onnxruntime does not fall back by itself when a listed provider cannot load (session
 * creation fails), so each provider is tried in turn, keeping the later ones behind it
 * for the operators it lacks: [tensorrt, cuda, cpu] → [cuda, cpu] → [cpu].
 */
async function create(modelPath: string, settings: SessionSettings): Promise<CreatedReply> {
  const providers = [...new Set<ExecutionProviderName>([...settings.providers, 'cpu'])];
  const fallbacks: CreatedReply['fallbacks'] = [];
  for (let i = 0; i < providers.length; i++) {
    const chain = providers.slice(i);
    try {
      session = await ort.InferenceSession.create(modelPath, onnxSessionOptions(settings, chain));
      return { kind: 'created', provider: chain[0]!, fallbacks, inputs: describe(session.inputMetadata), outputs: describe(session.outputMetadata) };
    } catch (err) {
      if (chain[0] === 'cpu') throw err;
      fallbacks.push({ provider: chain[0]!, reason: errorMessage(err) });
    }
  }
  throw new Error('no execution provider could load the model');
}

function describe(metadata: readonly ort.InferenceSession.ValueMetadata[]): TensorInfo[] {
  return metadata.map((m) => (m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : { name: m.name, type: 'non_tensor', shape: [] }));
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
