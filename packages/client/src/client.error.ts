import { ErrorCode, type ErrorBody, type ErrorDetail } from '@visionq/api';

/**
 * Every failure of a call: a non-2xx answer (its status and DESIGN.md's error body) or no
 * answer at all (`status` 0, `unavailable`). One class, so a caller switches on `code`.
 */
export class VisionqClientError extends Error {
  override readonly name = 'VisionqClientError';
  /** The HTTP status; 0 when the gateway could not be reached. */
  readonly status: number;
  readonly code: ErrorCode;
  readonly details: ErrorDetail[];
  /** The task the failure is about, when it goes on and can be polled (a `/predict` past its timeout). */
  readonly taskId?: string;
  readonly statusUrl?: string;

  constructor(status: number, body: ErrorBody, options?: { cause?: unknown }) {
    super(body.error.message, options);
    this.status = status;
    this.code = body.error.code;
    this.details = body.error.details;
    if (body.task_id !== undefined) this.taskId = body.task_id;
    if (body.status_url !== undefined) this.statusUrl = body.status_url;
  }

  /** The error a non-2xx answer stands for; a body that is not DESIGN.md's (a proxy's page) is named by its status. */
  static async fromResponse(res: Response): Promise<VisionqClientError> {
    const text = await res.text().catch(() => '');
    try {
      const body = JSON.parse(text) as ErrorBody;
      if (typeof body?.error?.code === 'string' && typeof body.error.message === 'string') {
        return new VisionqClientError(res.status, { ...body, error: { ...body.error, details: body.error.details ?? [] } });
      }
    } catch {
      // Not JSON: described below.
    }
    const code = res.status >= 500 ? ErrorCode.Unavailable : ErrorCode.Internal;
    return new VisionqClientError(res.status, { error: { code, message: `${res.status} ${res.statusText} from ${res.url}: ${text.slice(0, 200)}`.trim(), details: [] } });
  }

  /** No answer: the connection was refused, reset or timed out. */
  static unreachable(url: string, cause: unknown): VisionqClientError {
    const reason = cause instanceof Error ? ((cause.cause as Error | undefined)?.message ?? cause.message) : String(cause);
    return new VisionqClientError(0, { error: { code: ErrorCode.Unavailable, message: `cannot reach ${url}: ${reason}`, details: [] } }, { cause });
  }
}
