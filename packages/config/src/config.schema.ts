import { z } from 'zod';
import { BUCKET_NAME, folderUriSchema } from '@visionq/api';
import { parseRedisUrl } from './redis-url';

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => ['true', '1', 'yes'].includes(v));
const intList = z
  .string()
  .transform((s) => s.split(',').map((p) => p.trim()).filter((p) => p.length > 0))
  .pipe(z.array(z.string().regex(/^\d+$/, 'expected positive integers').transform(Number).pipe(z.number().int().min(1))));
const list = z.string().transform((s) => s.split(',').map((p) => p.trim()).filter((p) => p.length > 0));
const redisUrl = z.string().superRefine((url, ctx) => {
  try {
    parseRedisUrl(url);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});
const providerName = z.enum(['cpu', 'cuda', 'tensorrt']);
/** Execution providers visionq knows how to ask onnxruntime for. */
export type ExecutionProviderName = z.infer<typeof providerName>;
const providerList = z
  .string()
  .transform((s) => s.split(',').map((p) => p.trim().toLowerCase()).filter((p) => p.length > 0))
  .pipe(z.array(providerName).min(1))
  // CPU is always the last resort.
  .transform((list) => (list.includes('cpu') ? list : [...list, 'cpu' as const]));

/**
 * `VISIONQ_BENCH_SIMULATED_DEVICE`: `<ms per batch>` or `<ms per batch>+<ms per image>`
 * (decimals allowed); empty = off.
 */
const simulatedDevice = z
  .string()
  .regex(/^$|^\d+(\.\d+)?(\+\d+(\.\d+)?)?$/, 'expected <ms per batch> or <ms per batch>+<ms per image>, e.g. 40 or 20+1.5')
  .transform((s) => {
    if (s === '') return null;
    const [batch, image = '0'] = s.split('+') as [string, string | undefined];
    return { msPerBatch: Number(batch), msPerImage: Number(image) };
  });

/**
 * Each variable: its schema (applied to the string form), its default, where it goes in
 * `Config`, and a line for the README's configuration table. An `internal` one is for the
 * project's own benchmarks: parsed like the others, left out of the user-facing table.
 */
export const VARIABLES = {
  LOG_LEVEL: { schema: z.enum(['error', 'warn', 'info', 'debug']), default: 'info', path: 'log.level', doc: 'Lowest log level written.' },
  LOG_FORMAT: { schema: z.enum(['json', 'pretty']), default: 'json', path: 'log.format', doc: 'JSON lines, or readable lines for a terminal.' },
  MODELS_DIR: {
    schema: z.string().min(1),
    default: 'models',
    path: 'models.dir',
    doc: 'Folder with a sub-folder per model: `NAME/VERSION/` (model.onnx, manifest.json, labels.txt, optional metrics.json), or a flat `NAME/` as version 1. Watched: versions added, changed or removed load and retire without a restart (also on SIGHUP).',
  },
  DEFAULT_MODEL: { schema: z.string().min(1), default: 'fashion-vgg', path: 'models.defaultModel', doc: 'Model used when a request names none: `NAME` (its default version) or `NAME@VERSION`.' },
  MODELS_WATCH: { schema: bool, default: 'true', path: 'models.watch', doc: 'Watch `MODELS_DIR` and reload on changes; when false only SIGHUP reloads.' },
  MODELS_RELOAD_DEBOUNCE_MS: { schema: int(0, 600_000), default: '1000', path: 'models.reloadDebounceMs', doc: 'Quiet time after the last change under `MODELS_DIR` before reloading, so a folder being copied settles first.' },
  EXECUTION_PROVIDERS: { schema: providerList, default: 'cpu', path: 'inference.providers', doc: 'Comma list tried in order: `tensorrt`, `cuda`, `cpu`. CPU is the fallback when a provider cannot load.' },
  CUDA_DEVICE_ID: { schema: int(0), default: '0', path: 'inference.deviceId', doc: 'GPU used by the CUDA and TensorRT providers.' },
  INTRA_OP_THREADS: { schema: int(0, 1024), default: '0', path: 'inference.intraOpThreads', doc: 'onnxruntime threads inside one operator; 0 = one per CPU available to the process.' },
  INTER_OP_THREADS: { schema: int(0, 1024), default: '0', path: 'inference.interOpThreads', doc: 'onnxruntime threads across operators; 0 = onnxruntime default.' },
  GRAPH_OPTIMIZATION: { schema: z.enum(['disabled', 'basic', 'extended', 'all']), default: 'all', path: 'inference.graphOptimization', doc: 'onnxruntime graph optimisation level.' },
  WARMUP: { schema: bool, default: 'true', path: 'inference.warmup', doc: 'Run each preferred batch size once when a model loads.' },
  MAX_BATCH_SIZE: { schema: int(1, 4096), default: '16', path: 'batching.maxBatchSize', doc: 'Largest batch the dynamic batcher sends to a model.' },
  MAX_QUEUE_DELAY_MS: { schema: int(0, 60_000), default: '10', path: 'batching.maxQueueDelayMs', doc: 'Longest an image waits for its batch to fill.' },
  BATCH_HOLD_MS: { schema: int(0, 60_000), default: '100', path: 'batching.maxHoldMs', doc: 'On a worker, longest a partial batch waits past `MAX_QUEUE_DELAY_MS` while more images for its model are being fetched and decoded (not for `/predict` images).' },
  PREFERRED_BATCH_SIZES: { schema: intList, default: '', path: 'batching.preferredBatchSizes', doc: 'Comma list of batch sizes the batcher aims for (and warms up); empty = max batch size.' },
  MAX_IMAGE_BYTES: { schema: int(1), default: String(50 * 1024 * 1024), path: 'imaging.maxImageBytes', doc: 'Larger inputs fail with `image_too_large` before decoding.' },
  MAX_IMAGE_PIXELS: { schema: int(1), default: String(100_000_000), path: 'imaging.maxImagePixels', doc: 'Images whose header claims more pixels fail with `image_too_large` before decoding.' },
  PREPROCESS_THREADS: { schema: int(0, 1024), default: '0', path: 'imaging.threads', doc: 'Threads that decode and resize images (each decode also takes one of libuv\'s threads, whose pool visionq sizes to match unless UV_THREADPOOL_SIZE is set); 0 = one per CPU available to the process.' },
  DECODE_PIXELS_IN_FLIGHT: { schema: int(1), default: String(200_000_000), path: 'imaging.decodePixelsInFlight', doc: "Pixels a worker decodes at once, all images together (about 3 bytes each while decoded): bounds decode memory by pixels, not image count. An image larger than this is decoded alone." },
  PORT: { schema: int(1, 65535), default: '8080', path: 'server.port', doc: 'Gateway HTTP port.' },
  MAX_JSON_DEPTH: { schema: int(1, 1000), default: '32', path: 'server.maxJsonDepth', doc: 'Deepest nesting of arrays and objects in a JSON request body; deeper ones get 400.' },
  HOST: { schema: z.string().min(1), default: '127.0.0.1', path: 'server.host', doc: 'Address the gateway listens on.' },
  API_KEYS_FILE: { schema: z.string(), default: '', path: 'auth.keysFile', doc: 'JSON array of API keys (hashed) with their tenants and scopes; re-read when it changes. Empty: no keys, served only on a loopback `HOST` (or with `AUTH=none`).' },
  AUTH: { schema: z.enum(['keys', 'none']), default: 'keys', path: 'auth.mode', doc: '`keys`: every route but `/healthz` needs a key from `API_KEYS_FILE` (without a file, only a loopback `HOST` is served, openly); `none`: serve without keys on any `HOST`, knowingly.' },
  HEADERS_TIMEOUT_MS: { schema: int(100, 600_000), default: '10000', path: 'server.headersTimeoutMs', doc: 'A client must send all its request headers within this; else 408 and the connection is closed.' },
  REQUEST_TIMEOUT_MS: { schema: int(100, 3_600_000), default: '300000', path: 'server.requestTimeoutMs', doc: 'A client must send its whole request (an upload included) within this; else 408 and the connection is closed.' },
  KEEP_ALIVE_TIMEOUT_MS: { schema: int(100, 600_000), default: '5000', path: 'server.keepAliveTimeoutMs', doc: 'An idle keep-alive connection is closed after this.' },
  GATEWAY_DRAIN_MS: { schema: int(0, 600_000), default: '0', path: 'server.drainMs', doc: 'On SIGTERM a gateway turns `/readyz` false at once and serves on this long before it stops taking connections (set it above your load balancer\'s probe period).' },
  EVENTS_HEARTBEAT_MS: { schema: int(100, 300_000), default: '15000', path: 'server.eventsHeartbeatMs', doc: 'How often `GET /tasks/:id/events` sends a comment line, so proxies keep an idle stream open.' },
  MAX_JSON_BYTES: { schema: int(1), default: String(1024 * 1024), path: 'server.maxJsonBytes', doc: 'Largest JSON request body; larger ones get 413.' },
  REDIS_URL: {
    schema: redisUrl,
    default: 'redis://127.0.0.1:6379',
    path: 'redis.url',
    doc: 'Redis holding the queues and task records: `redis://[user:pass@]host:port[/db]` (`rediss://` for TLS); a Redis Cluster as `redis+cluster://[user:pass@]host:port[,host:port…]`; a master found through Sentinels as `redis+sentinel://[user:pass@]host:port[,host:port…]/<master-name>[/db]` (see [Redis Cluster and Sentinel](#redis-cluster-and-sentinel)).',
  },
  REDIS_PREFIX: {
    schema: z.string().regex(/^(\{[A-Za-z0-9_-]+\}|[A-Za-z0-9_-]+)$/, 'expected letters, digits, _ and -, optionally in {braces}'),
    default: 'visionq',
    path: 'redis.prefix',
    doc: 'Prefix of every queue and key, so deployments can share one Redis. On a Cluster it becomes the hash tag `{visionq}` (every key in one slot); a prefix given in braces is used as it is everywhere.',
  },
  STORE: { schema: z.enum(['local', 's3']), default: 'local', path: 'store.kind', doc: '`local`: a folder per bucket under `DATA_DIR`; `s3`: any S3-compatible endpoint.' },
  DATA_DIR: { schema: z.string().min(1), default: 'data', path: 'store.dataDir', doc: 'Root of the local store: `s3://b/k` is the file `DATA_DIR/b/k`.' },
  S3_ENDPOINT: { schema: z.union([z.literal(''), z.url()]), default: '', path: 'store.s3Endpoint', doc: 'S3-compatible endpoint (MinIO, …); empty = AWS.' },
  S3_REGION: { schema: z.string().min(1), default: 'us-east-1', path: 'store.s3Region', doc: 'S3 region.' },
  S3_FORCE_PATH_STYLE: { schema: bool, default: 'false', path: 'store.s3ForcePathStyle', doc: 'Address buckets as `endpoint/bucket` (MinIO and most S3-compatible servers need `true`).' },
  S3_ACCESS_KEY_ID: { schema: z.string(), default: '', path: 'store.s3AccessKeyId', doc: 'With `S3_SECRET_ACCESS_KEY`; both empty = the AWS SDK default credential chain.' },
  S3_SECRET_ACCESS_KEY: { schema: z.string(), default: '', path: 'store.s3SecretAccessKey', doc: 'Secret for `S3_ACCESS_KEY_ID`.' },
  ALLOWED_BUCKETS: { schema: list.pipe(z.array(z.union([z.literal('*'), z.string().regex(BUCKET_NAME, 'not a bucket name')])).min(1)), default: 'visionq', path: 'store.allowedBuckets', doc: 'Comma list of buckets tasks may read and write; `*` = any.' },
  UPLOADS_URI: { schema: folderUriSchema, default: 's3://visionq/uploads/', path: 'store.uploadsUri', doc: 'Where uploaded images are stored.' },
  RESULTS_URI: { schema: folderUriSchema, default: 's3://visionq/results/', path: 'store.resultsUri', doc: 'Where results go when a task names no `output`.' },
  CALLBACK_ALLOWED_HOSTS: { schema: list, default: '', path: 'callbacks.allowedHosts', doc: 'Comma list of hosts a `callback_url` may name over plain http, and reach even on loopback or private addresses (otherwise callbacks are https to public addresses only).' },
  WEBHOOK_SECRET: { schema: z.union([z.literal(''), z.string().regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, 'expected whsec_<base64>')]), default: '', path: 'callbacks.webhookSecret', doc: 'Signing secret of callbacks when the gateway serves without keys (with keys, each tenant\'s entry has its `webhook_secret`).' },
  CALLBACK_RETRY_WINDOW_S: { schema: int(1, 30 * 86_400), default: '86400', path: 'callbacks.retryWindowSeconds', doc: 'How long after its task ended a callback is retried before it is recorded as failed.' },
  CALLBACK_TIMEOUT_MS: { schema: int(100, 600_000), default: '10000', path: 'callbacks.timeoutMs', doc: 'Longest one callback attempt may take.' },
  CALLBACK_BACKOFF_MS: { schema: int(10, 3_600_000), default: '1000', path: 'callbacks.backoffMs', doc: 'First wait between callback attempts; it doubles each time (with jitter), up to an hour.' },
  CALLBACK_PROGRESS_INTERVAL_S: { schema: int(1, 86_400), default: '10', path: 'callbacks.progressIntervalSeconds', doc: 'Least time between two progress callbacks of one task (`events: ["progress"]`); each carries the task view as it is when sent.' },
  CHUNK_SIZE: { schema: int(1, 10_000), default: '64', path: 'tasks.chunkSize', doc: 'Images per chunk: the unit workers share and retry.' },
  MAX_TASK_IMAGES: { schema: int(1), default: '10000', path: 'tasks.maxImages', doc: 'Most images one request may list or upload (a `source` prefix has no limit).' },
  LIST_PAGE_SIZE: { schema: int(1, 1000), default: '1000', path: 'tasks.listPageSize', doc: 'Objects listed per page of a `source` prefix.' },
  INLINE_RESULTS_LIMIT: { schema: int(0, 10_000), default: '100', path: 'tasks.inlineResultsLimit', doc: 'Finished tasks of at most this many images show their results in `GET /tasks/:id`.' },
  PREDICT_TIMEOUT_MS: { schema: int(1), default: '30000', path: 'tasks.predictTimeoutMs', doc: '`POST /predict` answers 504 with the task id after this long.' },
  TASK_RETENTION_S: { schema: int(60), default: String(7 * 24 * 3600), path: 'tasks.retentionSeconds', doc: 'Task records and idempotency keys expire this long after submission.' },
  TASK_TIMEOUT_S: { schema: int(0, 365 * 86_400), default: '86400', path: 'tasks.defaultTimeoutSeconds', doc: 'Deadline of a task that names no `timeout_s`: past it the task ends `failed` with `timeout`, its results so far kept; 0 = none.' },
  TASK_EVENTS_MAXLEN: { schema: int(10, 1_000_000), default: '1000', path: 'tasks.eventsMaxLen', doc: "Entries kept in one task's event log (the oldest go first; `ended` is always the last)." },
  ENDED_EVENTS_MAXLEN: { schema: int(100, 100_000_000), default: '100000', path: 'tasks.endedEventsMaxLen', doc: 'Entries kept in the stream of ended tasks that callbacks and other consumers of endings read.' },
  CHUNK_ATTEMPTS: { schema: int(1, 100), default: '5', path: 'tasks.chunkAttempts', doc: 'Tries of a chunk on store or Redis faults, with exponential backoff, before its task fails.' },
  WORKER_CONCURRENCY: { schema: int(1, 256), default: '4', path: 'worker.chunkConcurrency', doc: 'Chunks one worker processes at once; their images share batches.' },
  FETCH_CONCURRENCY: { schema: int(1, 1024), default: '16', path: 'worker.fetchConcurrency', doc: 'Object fetches in flight per worker.' },
  LOCK_DURATION_MS: { schema: int(1000), default: '60000', path: 'worker.lockDurationMs', doc: 'A chunk whose worker stops renewing its lock this long is handed to another worker.' },
  STALLED_INTERVAL_MS: { schema: int(1000), default: '30000', path: 'worker.stalledIntervalMs', doc: 'How often workers look for chunks whose worker died.' },
  MAX_STALLED_COUNT: { schema: int(0, 100), default: '3', path: 'worker.maxStalledCount', doc: 'Times a chunk may be orphaned by a dying worker and taken up again before its task fails.' },
  DRAIN_TIMEOUT_MS: { schema: int(0, 3_600_000), default: '60000', path: 'worker.drainTimeoutMs', doc: 'On SIGTERM, how long a worker lets its chunks in flight finish before leaving them to other workers.' },
  WORKER_METRICS_PORT: { schema: int(0, 65535), default: '9464', path: 'worker.metricsPort', doc: 'Port where a worker serves `GET /metrics` (Prometheus); 0 = none. Give each worker on one host its own.' },
  WORKER_MODELS: { schema: list, default: '', path: 'worker.models', doc: 'Comma list of models a worker serves, `NAME` (every version) or `NAME@VERSION`; empty = every model in `MODELS_DIR`.' },
  VISIONQ_BENCH_SIMULATED_DEVICE: {
    schema: simulatedDevice,
    default: '',
    path: 'bench.simulatedDevice',
    internal: true,
    doc: 'Bench only (`npm run bench -- scale`): serve every model on a simulated device that sleeps this long per batch (plus per image) and returns fixed logits, instead of onnxruntime. Never set it in a deployment: its predictions are not real.',
  },
} as const;

export type VariableName = keyof typeof VARIABLES;

type Variables = typeof VARIABLES;
type Section<P> = P extends `${infer S}.${string}` ? S : never;
type Key<P> = P extends `${string}.${infer K}` ? K : never;

/**
 * The typed, nested configuration every app receives, inferred from VARIABLES: each
 * variable's parsed type at its `path`. Built once by `loadConfig`; packages take the
 * slice they need (`Config['store']`, `Config['inference']`, …).
 */
export type Config = {
  [S in Section<Variables[VariableName]['path']>]: {
    [N in VariableName as Variables[N]['path'] extends `${S}.${string}` ? Key<Variables[N]['path']> : never]: z.output<Variables[N]['schema']>;
  };
};
