import { z } from 'zod';

/** Execution providers visionq knows how to ask onnxruntime for. */
export type ExecutionProviderName = 'cpu' | 'cuda' | 'tensorrt';
export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

/** The typed, nested configuration every app receives. Built once by `loadConfig`. */
export interface Config {
  log: { level: string; format: 'json' | 'pretty' };
  models: {
    /** Folder holding one sub-folder per model. */
    dir: string;
    /** Model used when a request names none. */
    defaultModel: string;
  };
  inference: {
    /** Providers tried in order; `cpu` is always appended as the last resort. */
    providers: ExecutionProviderName[];
    deviceId: number;
    /** 0 lets onnxruntime choose. */
    intraOpThreads: number;
    interOpThreads: number;
    graphOptimization: GraphOptimizationLevel;
    /** Run each preferred batch size once before serving. */
    warmup: boolean;
  };
  batching: {
    maxBatchSize: number;
    maxQueueDelayMs: number;
    preferredBatchSizes: number[];
  };
  imaging: {
    maxImageBytes: number;
    maxImagePixels: number;
  };
}

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => ['true', '1', 'yes'].includes(v));
const intList = z
  .string()
  .transform((s) => s.split(',').map((p) => p.trim()).filter((p) => p.length > 0))
  .pipe(z.array(z.string().regex(/^\d+$/, 'expected positive integers').transform(Number).pipe(z.number().int().min(1))));
const providerList = z
  .string()
  .transform((s) => s.split(',').map((p) => p.trim().toLowerCase()).filter((p) => p.length > 0))
  .pipe(z.array(z.enum(['cpu', 'cuda', 'tensorrt'])).min(1));

/**
 * Each variable: its schema (applied to the string form), its default, where it goes in
 * `Config`, and a line for the README's configuration table.
 */
export const VARIABLES = {
  LOG_LEVEL: { schema: z.enum(['error', 'warn', 'info', 'debug']), default: 'info', path: 'log.level', doc: 'Lowest log level written.' },
  LOG_FORMAT: { schema: z.enum(['json', 'pretty']), default: 'json', path: 'log.format', doc: 'JSON lines, or readable lines for a terminal.' },
  MODELS_DIR: { schema: z.string().min(1), default: 'models', path: 'models.dir', doc: 'Folder with one sub-folder per model (model.onnx, manifest.json, labels.txt).' },
  DEFAULT_MODEL: { schema: z.string().min(1), default: 'fashion-vgg', path: 'models.defaultModel', doc: 'Model used when a request names none.' },
  EXECUTION_PROVIDERS: { schema: providerList, default: 'cpu', path: 'inference.providers', doc: 'Comma list tried in order: `tensorrt`, `cuda`, `cpu`. CPU is the fallback when a provider cannot load.' },
  CUDA_DEVICE_ID: { schema: int(0), default: '0', path: 'inference.deviceId', doc: 'GPU used by the CUDA and TensorRT providers.' },
  INTRA_OP_THREADS: { schema: int(0, 1024), default: '0', path: 'inference.intraOpThreads', doc: 'onnxruntime threads inside one operator; 0 = one per CPU available to the process.' },
  INTER_OP_THREADS: { schema: int(0, 1024), default: '0', path: 'inference.interOpThreads', doc: 'onnxruntime threads across operators; 0 = onnxruntime default.' },
  GRAPH_OPTIMIZATION: { schema: z.enum(['disabled', 'basic', 'extended', 'all']), default: 'all', path: 'inference.graphOptimization', doc: 'onnxruntime graph optimisation level.' },
  WARMUP: { schema: bool, default: 'true', path: 'inference.warmup', doc: 'Run each preferred batch size once when a model loads.' },
  MAX_BATCH_SIZE: { schema: int(1, 4096), default: '16', path: 'batching.maxBatchSize', doc: 'Largest batch the dynamic batcher sends to a model.' },
  MAX_QUEUE_DELAY_MS: { schema: int(0, 60_000), default: '10', path: 'batching.maxQueueDelayMs', doc: 'Longest an image waits for its batch to fill.' },
  PREFERRED_BATCH_SIZES: { schema: intList, default: '', path: 'batching.preferredBatchSizes', doc: 'Comma list of batch sizes the batcher aims for (and warms up); empty = max batch size.' },
  MAX_IMAGE_BYTES: { schema: int(1), default: String(50 * 1024 * 1024), path: 'imaging.maxImageBytes', doc: 'Larger inputs fail with `image_too_large` before decoding.' },
  MAX_IMAGE_PIXELS: { schema: int(1), default: String(100_000_000), path: 'imaging.maxImagePixels', doc: 'Images whose header claims more pixels fail with `image_too_large` before decoding.' },
} as const;

export type VariableName = keyof typeof VARIABLES;
