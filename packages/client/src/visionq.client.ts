import { isTerminal, type CallbackEvent, type ImageResult, type ModelsResponse, type PredictResponse, type Priority, type TaskAccepted, type TaskList, type TaskStatus, type TaskView } from '@visionq/api';
import { serverSentEvents, textLines } from './byte-stream';
import { VisionqClientError } from './client.error';
import { HttpTransport } from './http.transport';
import { DEFAULT_RETRY_POLICY, sleep, type RetryPolicy } from './retry.policy';

export interface VisionqClientOptions {
  /** The gateway's base URL, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** An API key, sent as `Authorization: Bearer`; none for a gateway serving without keys. */
  key?: string;
  /** The fetch to call (default: the platform's `fetch`). */
  fetch?: typeof fetch;
  /** How requests answered 503 or 429 are sent again (default: 5 attempts from 250 ms, at most 30 s apart). */
  retry?: Partial<RetryPolicy>;
  /** How often `wait` polls `GET /tasks/:id` when the events stream is unavailable (default 1000 ms). */
  pollIntervalMs?: number;
}

/** An image to upload: a browser `File`, or any Blob with the name to give it (in Node, `openFile` of `@visionq/client/node`). */
export type Upload = File | { name: string; blob: Blob };

export interface PredictOptions {
  model?: string;
  topK?: number;
  signal?: AbortSignal;
}

/** A task's images: exactly one of `images`, `source` and `files`. */
export interface SubmitRequest {
  /** Object URIs, `s3://bucket/key`. */
  images?: string[];
  /** A prefix, `s3://bucket/prefix/`, listed by the workers. */
  source?: string;
  /** Uploads, streamed as multipart, never read whole into memory. */
  files?: Upload[];
  model?: string;
  topK?: number;
  priority?: Priority;
  /** Folder for the result parts, `s3://bucket/prefix/`. */
  output?: string;
  callbackUrl?: string;
  events?: CallbackEvent[];
  metadata?: Record<string, unknown>;
  timeoutS?: number;
  /** Makes a repeated submit return the same task; a fresh UUID when not given, so the client's own retries never make two. */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

export interface ListOptions {
  status?: TaskStatus;
  /** Tasks per page, 1–100 (the gateway's default 20). */
  limit?: number;
  cursor?: string;
  signal?: AbortSignal;
}

export interface WaitOptions {
  /** Called with the task view at each change (each event, or each poll that saw a change). */
  onProgress?: (view: TaskView) => void;
  signal?: AbortSignal;
}

/** Reconnects of the events stream in a row without a new event before `wait` polls instead. */
const MAX_STREAM_DROPS = 3;

/**
 * A typed client of the visionq gateway (DESIGN.md's HTTP API) on the platform `fetch`:
 * Node ≥ 20 and browsers alike. Every failure is a VisionqClientError.
 */
export class VisionqClient {
  private readonly http: HttpTransport;
  private readonly pollIntervalMs: number;
  private readonly retryPolicy: RetryPolicy;

  constructor(options: VisionqClientOptions) {
    if (!/^https?:\/\//.test(options.url)) throw new TypeError(`url must be an http(s) URL, got "${options.url}"`);
    this.retryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    if (!(this.retryPolicy.maxAttempts >= 1)) throw new RangeError('retry.maxAttempts must be at least 1');
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.http = new HttpTransport(options.url, options.key, options.fetch ?? globalThis.fetch.bind(globalThis), this.retryPolicy);
  }

  /** `POST /predict`: one image, an object URI or an upload, classified at once. */
  async predict(image: string | Upload, options: PredictOptions = {}): Promise<PredictResponse> {
    const { signal } = options;
    if (typeof image === 'string') {
      return this.http.json('POST', '/predict', { json: { image, model: options.model, top_k: options.topK }, signal });
    }
    const form = new FormData();
    if (options.model !== undefined) form.append('model', options.model);
    if (options.topK !== undefined) form.append('top_k', String(options.topK));
    appendUpload(form, 'file', image);
    return this.http.json('POST', '/predict', { body: form, signal });
  }

  /** `POST /batch_predict`: a task of URIs, a prefix or uploads; answered at once with its id. */
  async submit(request: SubmitRequest): Promise<TaskAccepted> {
    const given = (['images', 'source', 'files'] as const).filter((k) => request[k] !== undefined);
    if (given.length !== 1) throw new TypeError(`submit needs exactly one of images, source and files (got ${given.join(', ') || 'none'})`);
    const options = {
      model: request.model,
      top_k: request.topK,
      priority: request.priority,
      output: request.output,
      callback_url: request.callbackUrl,
      events: request.events,
      metadata: request.metadata,
      timeout_s: request.timeoutS,
    };
    const headers = { 'idempotency-key': request.idempotencyKey ?? crypto.randomUUID() };
    const { signal } = request;
    if (request.files === undefined) {
      return this.http.json('POST', '/batch_predict', { json: { images: request.images, source: request.source, ...options }, headers, signal });
    }
    const form = new FormData();
    for (const [name, value] of Object.entries(options)) {
      if (value === undefined) continue;
      form.append(name, Array.isArray(value) ? value.join(',') : typeof value === 'object' ? JSON.stringify(value) : String(value));
    }
    for (const file of request.files) appendUpload(form, 'files', file);
    return this.http.json('POST', '/batch_predict', { body: form, headers, signal });
  }

  /** `GET /tasks/:id`. */
  async get(id: string, signal?: AbortSignal): Promise<TaskView> {
    return this.http.json('GET', `/tasks/${encodeURIComponent(id)}`, { signal });
  }

  /** `GET /tasks`: one page of the tenant's tasks, newest first. */
  async list(options: ListOptions = {}): Promise<TaskList> {
    const query = new URLSearchParams();
    if (options.status !== undefined) query.set('status', options.status);
    if (options.limit !== undefined) query.set('limit', String(options.limit));
    if (options.cursor !== undefined) query.set('cursor', options.cursor);
    const search = query.size > 0 ? `?${query}` : '';
    return this.http.json('GET', `/tasks${search}`, { signal: options.signal });
  }

  /** Every task of the tenant (newest first), page after page. */
  async *listAll(options: Omit<ListOptions, 'cursor'> = {}): AsyncGenerator<TaskView> {
    let cursor: string | undefined;
    do {
      const page = await this.list({ ...options, ...(cursor === undefined ? {} : { cursor }) });
      yield* page.tasks;
      cursor = page.next_cursor ?? undefined;
    } while (cursor !== undefined);
  }

  /**
   * Resolves to the task's view once it has ended. Follows `GET /tasks/:id/events`, resuming
   * with `Last-Event-ID` after a drop; polls `GET /tasks/:id` when the stream is unavailable.
   */
  async wait(id: string, options: WaitOptions = {}): Promise<TaskView> {
    const { onProgress, signal } = options;
    const path = `/tasks/${encodeURIComponent(id)}/events`;
    let lastEventId: string | undefined;
    let last: TaskView | undefined;
    for (let drops = 0; drops < MAX_STREAM_DROPS; ) {
      let res: Response;
      try {
        res = await this.http.send('GET', path, { headers: { accept: 'text/event-stream', ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }) }, signal });
      } catch (err) {
        // A task that does not exist or may not be read is an answer; anything else, polling may still get through.
        if (signal?.aborted || (err instanceof VisionqClientError && err.status >= 400 && err.status < 500)) throw err;
        break;
      }
      if (!res.body || !(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
        await res.body?.cancel();
        break;
      }
      let ended = false;
      try {
        for await (const event of serverSentEvents(res.body)) {
          lastEventId = event.id ?? lastEventId;
          last = JSON.parse(event.data) as TaskView;
          drops = 0;
          onProgress?.(last);
        }
        ended = true;
      } catch {
        // A dropped stream is resumed below from Last-Event-ID; an abort is the caller's.
        if (signal?.aborted) throw signal.reason;
      }
      // The server closes the stream after the task's last `ended`.
      if (ended && last !== undefined && isTerminal(last.status)) return last;
      drops++;
      await sleep(this.retryPolicy.backoffMs * 2 ** drops, signal);
    }
    return this.poll(id, options);
  }

  /** `GET /tasks/:id/results` as `application/x-ndjson`: every image's result, line by line. */
  async *results(id: string, signal?: AbortSignal): AsyncGenerator<ImageResult> {
    const res = await this.http.send('GET', `/tasks/${encodeURIComponent(id)}/results`, { headers: { accept: 'application/x-ndjson' }, signal });
    if (!res.body) return;
    for await (const line of textLines(res.body)) {
      if (line.trim() !== '') yield JSON.parse(line) as ImageResult;
    }
  }

  /** `GET /models`: the models served, with the workers serving each. */
  async models(signal?: AbortSignal): Promise<ModelsResponse> {
    return this.http.json('GET', '/models', { signal });
  }

  /** `DELETE /tasks/:id`: no new chunk starts; resolves to the cancelled task's view. */
  async cancel(id: string, signal?: AbortSignal): Promise<TaskView> {
    return this.http.json('DELETE', `/tasks/${encodeURIComponent(id)}`, { signal });
  }

  /** `POST /tasks/:id/retry`: runs the failed chunks again and, with `failedImages`, every image with an error line. */
  async retry(id: string, options: { failedImages?: boolean; signal?: AbortSignal } = {}): Promise<TaskView> {
    return this.http.json('POST', `/tasks/${encodeURIComponent(id)}/retry`, { json: { failed_images: options.failedImages === true }, signal: options.signal });
  }

  private async poll(id: string, { onProgress, signal }: WaitOptions): Promise<TaskView> {
    let seen = '';
    for (;;) {
      const view = await this.get(id, signal);
      const state = JSON.stringify([view.status, view.progress, view.retries]);
      if (state !== seen) onProgress?.(view);
      seen = state;
      if (isTerminal(view.status)) return view;
      await sleep(this.pollIntervalMs, signal);
    }
  }
}

function appendUpload(form: FormData, field: string, upload: Upload): void {
  if (upload instanceof Blob) form.append(field, upload, upload.name);
  else form.append(field, upload.blob, upload.name);
}
