import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { modelLabels } from '@visionq/api';

export { Registry as MetricsRegistry } from 'prom-client';

/** A registry holding the process's own metrics (CPU, memory, event-loop lag), every series labelled with `service`. */
export function createMetricsRegistry(service: 'gateway' | 'worker'): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry, prefix: 'visionq_' });
  return registry;
}

/** What the gateway reads at scrape time. Both calls should answer fast; a failure leaves the gauge unset. */
export interface GatewaySources {
  /**
   * Per model version (`NAME@VERSION`): images of unfinished tasks not done yet (waiting,
   * delayed or running), what an autoscaler (KEDA) scales workers on; and the age of its
   * oldest unfinished task.
   */
  backlog(): Promise<Record<string, { images: number; oldestAgeSeconds: number | null }>>;
  /** Worker replicas whose heartbeat is current: how many, and how many serve each model version (every version listed, 0 included). */
  liveWorkers(): Promise<{ total: number; byModel: Record<string, number> }>;
  /** Resolves when Redis answers. */
  pingRedis(): Promise<unknown>;
}

/** The gateway's series; `GET /metrics` serves `registry`. */
export class GatewayMetrics {
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly requestSeconds: Histogram<'method' | 'route'>;
  readonly tasksSubmitted: Counter<'model' | 'version' | 'kind'>;
  readonly callbacks: Counter<'outcome'>;
  readonly errors: Counter<'code'>;

  constructor(
    readonly registry: Registry,
    sources: GatewaySources,
  ) {
    this.requests = new Counter({ name: 'visionq_http_requests_total', help: 'HTTP requests answered', labelNames: ['method', 'route', 'status'], registers: [registry] });
    this.requestSeconds = new Histogram({
      name: 'visionq_http_request_duration_seconds',
      help: 'Time to answer an HTTP request',
      labelNames: ['method', 'route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    this.tasksSubmitted = new Counter({ name: 'visionq_tasks_submitted_total', help: 'Tasks accepted', labelNames: ['model', 'version', 'kind'], registers: [registry] });
    this.callbacks = new Counter({ name: 'visionq_callbacks_total', help: 'Callback attempts: delivered, retried (will try again), failed (given up); progress callbacks progress_sent or progress_dropped', labelNames: ['outcome'], registers: [registry] });
    this.errors = new Counter({ name: 'visionq_http_errors_total', help: 'Error bodies answered (by the routes or to requests Node refused), by error code', labelNames: ['code'], registers: [registry] });
    new Gauge({
      name: 'visionq_redis_up',
      help: 'Whether Redis answered this scrape (1) or not (0)',
      registers: [registry],
      async collect() {
        const up = await Promise.race([sources.pingRedis().then(() => 1), new Promise<number>((resolve) => setTimeout(() => resolve(0), 2_000).unref())]).catch(() => 0);
        this.set(up);
      },
    });
    // One read of the backlog per scrape serves both gauges.
    let reading: Promise<Awaited<ReturnType<GatewaySources['backlog']>>> | undefined;
    const backlog = () => (reading ??= sources.backlog().catch(() => ({})).finally(() => setImmediate(() => (reading = undefined))));
    new Gauge({
      name: 'visionq_queue_backlog',
      help: 'Images of unfinished tasks not done yet (waiting, delayed or running), per model version',
      labelNames: ['model', 'version'],
      registers: [registry],
      async collect() {
        this.reset();
        // A scrape must not fail while Redis is down: no series then reads as "unknown".
        for (const [ref, { images }] of Object.entries(await backlog())) this.set(modelLabels(ref), images);
      },
    });
    new Gauge({
      name: 'visionq_queue_oldest_seconds',
      help: 'Age of the oldest unfinished task, per model version (0 when none)',
      labelNames: ['model', 'version'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const [ref, { oldestAgeSeconds }] of Object.entries(await backlog())) this.set(modelLabels(ref), oldestAgeSeconds ?? 0);
      },
    });
    // One read of the heartbeats per scrape serves both gauges.
    let listing: Promise<Awaited<ReturnType<GatewaySources['liveWorkers']>> | undefined> | undefined;
    const liveWorkers = () => (listing ??= sources.liveWorkers().catch(() => undefined).finally(() => setImmediate(() => (listing = undefined))));
    new Gauge({
      name: 'visionq_workers_live',
      help: 'Worker replicas whose heartbeat is current',
      registers: [registry],
      async collect() {
        // As above: unknown while Redis is down, never a failed scrape.
        const live = await liveWorkers();
        // remove(), not reset(): prom-client's reset() puts an unlabelled gauge back at 0.
        if (live === undefined) this.remove();
        else this.set(live.total);
      },
    });
    new Gauge({
      name: 'visionq_model_workers_live',
      help: 'Worker replicas whose heartbeat is current, per model version they serve',
      labelNames: ['model', 'version'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const [ref, count] of Object.entries((await liveWorkers())?.byModel ?? {})) this.set(modelLabels(ref), count);
      },
    });
  }
}

/** A worker's series, served on its metrics port. */
export class WorkerMetrics {
  readonly images: Counter<'model' | 'version' | 'outcome'>;
  readonly chunks: Counter<'outcome'>;
  readonly chunkSeconds: Histogram;
  readonly batchSize: Histogram<'model' | 'version'>;
  readonly inferenceSeconds: Histogram<'model' | 'version'>;
  readonly fetchSeconds: Histogram<'model' | 'version'>;
  readonly decodeSeconds: Histogram<'model' | 'version'>;
  readonly batchFill: Histogram<'model' | 'version'>;
  readonly sessionBusySeconds: Counter<'model' | 'version'>;
  readonly imageErrors: Counter<'model' | 'version' | 'code'>;

  constructor(readonly registry: Registry) {
    const stageBuckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
    this.fetchSeconds = new Histogram({ name: 'visionq_fetch_duration_seconds', help: 'Time to read one image from the object store', labelNames: ['model', 'version'], buckets: stageBuckets, registers: [registry] });
    this.decodeSeconds = new Histogram({ name: 'visionq_decode_duration_seconds', help: 'Time to decode and preprocess one image', labelNames: ['model', 'version'], buckets: stageBuckets, registers: [registry] });
    this.batchFill = new Histogram({ name: 'visionq_batch_fill_ratio', help: 'Images of a batch over the largest batch the model takes', labelNames: ['model', 'version'], buckets: [0.125, 0.25, 0.5, 0.75, 0.99, 1], registers: [registry] });
    // rate() of this is the session's busy ratio: the share of time the model computes.
    this.sessionBusySeconds = new Counter({ name: 'visionq_session_busy_seconds_total', help: 'Time the model session spent running batches', labelNames: ['model', 'version'], registers: [registry] });
    this.images = new Counter({ name: 'visionq_images_total', help: 'Images classified (succeeded) or given an error line (failed)', labelNames: ['model', 'version', 'outcome'], registers: [registry] });
    // Per run of an image: a chunk retried after a fault counts its error lines again (visionq_images_total does not).
    this.imageErrors = new Counter({ name: 'visionq_image_errors_total', help: 'Error lines given to images, by error code', labelNames: ['model', 'version', 'code'], registers: [registry] });
    this.chunks = new Counter({ name: 'visionq_chunks_total', help: 'Chunks run: done, skipped (already counted or task ended), error (will retry)', labelNames: ['outcome'], registers: [registry] });
    this.chunkSeconds = new Histogram({ name: 'visionq_chunk_duration_seconds', help: 'Time to run one chunk', buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300], registers: [registry] });
    this.batchSize = new Histogram({ name: 'visionq_batch_size', help: 'Images per inference batch', labelNames: ['model', 'version'], buckets: [1, 2, 4, 8, 16, 32, 64, 128], registers: [registry] });
    this.inferenceSeconds = new Histogram({
      name: 'visionq_inference_duration_seconds',
      help: 'Time of one batch in the model session',
      labelNames: ['model', 'version'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
  }
}
