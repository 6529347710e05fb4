import { VisionqClientError } from './client.error';
import { retryDelayMs, sleep, type RetryPolicy } from './retry.policy';

export interface SendOptions {
  body?: string | FormData;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/**
 * The one place requests leave the client: the base URL and key are added, 503 and 429
 * are sent again under the retry policy (every body this client sends can be sent twice:
 * JSON text, or a FormData whose Blobs are read anew), and any other non-2xx becomes a
 * VisionqClientError.
 */
export class HttpTransport {
  constructor(
    private readonly baseUrl: string,
    private readonly key: string | undefined,
    private readonly fetchFn: typeof fetch,
    private readonly policy: RetryPolicy,
  ) {}

  async send(method: string, path: string, options: SendOptions = {}): Promise<Response> {
    const url = `${this.baseUrl.replace(/\/+$/, '')}${path}`;
    const headers = { ...options.headers, ...(this.key === undefined ? {} : { authorization: `Bearer ${this.key}` }) };
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        res = await this.fetchFn(url, { method, headers, body: options.body, signal: options.signal });
      } catch (err) {
        if (options.signal?.aborted) throw options.signal.reason;
        throw VisionqClientError.unreachable(url, err);
      }
      if (res.ok) return res;
      const delay = res.status === 503 || res.status === 429 ? retryDelayMs(this.policy, attempt, res.headers.get('retry-after')) : null;
      if (delay === null) throw await VisionqClientError.fromResponse(res);
      await res.body?.cancel();
      await sleep(delay, options.signal);
    }
  }

  async json<T>(method: string, path: string, options: SendOptions & { json?: unknown } = {}): Promise<T> {
    const { json, ...rest } = options;
    const headers = { accept: 'application/json', ...(json === undefined ? {} : { 'content-type': 'application/json' }), ...rest.headers };
    const res = await this.send(method, path, { ...rest, headers, ...(json === undefined ? {} : { body: JSON.stringify(json) }) });
    return (await res.json()) as T;
  }
}
