import { randomUUID } from 'node:crypto';
import type { Request } from 'express';
import {
  batchFormSchema,
  batchJsonSchema,
  CALLBACK_EVENTS,
  DEFAULT_TOP_K,
  ErrorCode,
  modelLabels,
  predictFormSchema,
  predictJsonSchema,
  PRIORITIES,
  VisionqError,
  type ImageResult,
  type SubmitOptions,
} from '@visionq/api';
import type { AccessPolicy, Principal } from '@visionq/auth';
import { checkCallbackUrl } from '@visionq/callbacks';
import type { Config } from '@visionq/config';
import type { ModelCatalog } from '@visionq/models';
import { checkObjectKey, joinObjectUri, parseObjectUri, type ObjectStore } from '@visionq/object-store';
import type { GatewayMetrics, Logger } from '@visionq/observability';
import type { Submitted, TaskInput, TaskKind, TaskSpec, TaskSubmitter } from '@visionq/tasks';
import { receiveUpload } from './multipart-upload';
import type { TenantQuotas } from './tenant-quotas';
import type { RequestContext } from './request-context';
import { digestOf, isMultipart, parseRequest, requireJson } from './routes/request-body';

/** A submit parsed and checked, before anything is enqueued. */
interface Submission {
  spec: TaskSpec;
  input: TaskInput;
  digest: string;
  /** Objects this request stored, deleted again should it not become a task. */
  uploads: string[];
}

export interface PredictSubmission {
  taskId: string;
  image: string;
  model: { name: string; version: string };
  /** The image's result line, or PredictTimeoutError after `PREDICT_TIMEOUT_MS`. */
  result: Promise<ImageResult>;
}

/** What a `callback_url` is checked against: the hosts allowed over http or inside, and whether its tenant can sign. */
export interface CallbackPolicy {
  allowedHosts: readonly string[];
  secretsOf(tenant: string): string[];
}

export type SubmissionLimits = Pick<Config['tasks'], 'maxImages' | 'predictTimeoutMs' | 'defaultTimeoutSeconds' | 'retentionSeconds'> &
  Pick<Config['imaging'], 'maxImageBytes'>;

/**
 * Turns a submit request (JSON or multipart) into a task: checks its options against
 * what this deployment serves and allows, stores its uploads, and hands it to the task
 * submitter. A refused request enqueues nothing and leaves no upload behind.
 */
export class SubmissionService {
  constructor(
    private readonly catalog: ModelCatalog,
    private readonly access: AccessPolicy,
    private readonly store: ObjectStore,
    private readonly submitter: TaskSubmitter,
    private readonly quotas: TenantQuotas,
    private readonly callbacks: CallbackPolicy,
    private readonly limits: SubmissionLimits,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {}

  /** `POST /batch_predict`: JSON `images` or `source`, or a multipart upload of `files`. */
  async batch(req: Request, principal: Principal, context: RequestContext): Promise<Submitted> {
    const id = randomUUID();
    const submission = isMultipart(req) ? await this.batchUpload(req, principal, id, context) : this.batchJson(req, principal, id);
    submission.spec.requestId = context.id;
    const key = req.get('idempotency-key');
    let submitted: Submitted;
    let charge: { refund(): Promise<void> } | undefined;
    try {
      if (submission.spec.callbackUrl !== undefined) await this.checkCallback(principal, submission.spec.callbackUrl);
      charge = await this.quotas.chargeImages(principal, 'images' in submission.input ? submission.input.images.length : 0);
      submitted = await this.submitter.submit(submission.spec, submission.input, {
        ...(key === undefined ? {} : { idempotent: { key, digest: submission.digest } }),
        maxInFlight: principal.quotas.imagesInFlight,
      });
    } catch (err) {
      await charge?.refund();
      await this.discard(submission.uploads);
      throw err;
    }
    if (submitted.replayed) {
      await charge.refund();
      await this.discard(submission.uploads);
      return submitted;
    }
    this.metrics.tasksSubmitted.inc({ ...modelLabels(submission.spec.model), kind: 'batch' });
    context.log.info('task queued', { task_id: id, ...modelLabels(submission.spec.model), images: 'images' in submission.input ? submission.input.images.length : undefined });
    return submitted;
  }

  /** `POST /predict`: one image, uploaded (`file`) or named by URI, on the predict queue. */
  async predict(req: Request, principal: Principal, context: RequestContext): Promise<PredictSubmission> {
    const id = randomUUID();
    const uploaded = isMultipart(req);
    const { image, spec } = uploaded ? await this.predictUpload(req, principal, id, context) : this.predictJson(req, principal, id);
    spec.requestId = context.id;
    let charge: { refund(): Promise<void> } | undefined;
    let wait;
    try {
      charge = await this.quotas.chargeImages(principal, 1);
      ({ wait } = await this.submitter.predict(spec, image, { maxInFlight: principal.quotas.imagesInFlight }));
    } catch (err) {
      await charge?.refund();
      if (uploaded) await this.discard([image]);
      throw err;
    }
    const model = modelLabels(spec.model);
    this.metrics.tasksSubmitted.inc({ ...model, kind: 'predict' });
    return { taskId: id, image, model: { name: model.model, version: model.version }, result: wait(this.limits.predictTimeoutMs) };
  }

  private batchJson(req: Request, principal: Principal, id: string): Submission {
    requireJson(req);
    const body = parseRequest(batchJsonSchema, req.body);
    const { images, source, ...options } = body;
    const spec = this.spec(principal, id, 'batch', options);
    let input: TaskInput;
    if (images !== undefined) {
      if (images.length > this.limits.maxImages) {
        throw new VisionqError(ErrorCode.InvalidRequest, `${images.length} images is more than MAX_TASK_IMAGES=${this.limits.maxImages}; use a \`source\` prefix for more`, [
          { field: 'images', message: 'too many images' },
        ]);
      }
      images.forEach((uri, i) => this.checkImageUri(principal, uri, `images[${i}]`));
      input = { images };
    } else {
      this.checkPrefixUri(principal, source!, 'source');
      input = { source: source! };
      spec.source = source!;
    }
    return { spec, input, digest: digestOf(body), uploads: [] };
  }

  private async batchUpload(req: Request, principal: Principal, id: string, context: RequestContext): Promise<Submission> {
    const form = await receiveUpload(req, { ...this.uploadTo(principal, id), fileField: 'files', maxFiles: this.limits.maxImages, log: context.log });
    return this.keptOnlyIfValid(form.files, () => {
      const spec = this.spec(principal, id, 'batch', parseRequest(batchFormSchema, form.fields));
      if (form.files.length === 0) {
        throw new VisionqError(ErrorCode.InvalidRequest, 'upload at least one image in the field "files"', [{ field: 'files', message: 'no files' }]);
      }
      return { spec, input: { images: form.files }, digest: form.digest, uploads: form.files };
    });
  }

  private predictJson(req: Request, principal: Principal, id: string): { image: string; spec: TaskSpec } {
    requireJson(req);
    const { image, ...options } = parseRequest(predictJsonSchema, req.body);
    const spec = this.spec(principal, id, 'predict', options);
    this.checkImageUri(principal, image, 'image');
    return { image, spec };
  }

  private async predictUpload(req: Request, principal: Principal, id: string, context: RequestContext): Promise<{ image: string; spec: TaskSpec }> {
    const form = await receiveUpload(req, { ...this.uploadTo(principal, id), fileField: 'file', maxFiles: 1, log: context.log });
    return this.keptOnlyIfValid(form.files, () => {
      const spec = this.spec(principal, id, 'predict', parseRequest(predictFormSchema, form.fields));
      if (form.files.length !== 1) throw new VisionqError(ErrorCode.InvalidRequest, 'upload one image in the field "file"', [{ field: 'file', message: 'no file' }]);
      return { image: form.files[0]!, spec };
    });
  }

  /**
   * Checks a submit's options against what this deployment serves and allows, and fixes
   * the task's spec. Throws the request's error before anything is stored or enqueued.
   */
  private spec(principal: Principal, id: string, kind: TaskKind, options: SubmitOptions): TaskSpec {
    const model = this.catalog.resolve(options.model);
    const topK = options.top_k ?? Math.min(DEFAULT_TOP_K, model.labels.length);
    if (topK > model.labels.length) {
      throw new VisionqError(ErrorCode.InvalidArgument, `top_k=${topK} is more than the ${model.labels.length} classes of model "${model.ref}"`, [
        { field: 'top_k', message: `at most ${model.labels.length}` },
      ]);
    }
    if (options.events !== undefined && options.callback_url === undefined) {
      throw new VisionqError(ErrorCode.InvalidArgument, '`events` says what a callback is told of: it needs `callback_url`', [{ field: 'events', message: 'without callback_url' }]);
    }
    const output = options.output ?? this.access.resultsOf(principal);
    this.checkPrefixUri(principal, output, 'output');
    const timeoutS = options.timeout_s ?? this.limits.defaultTimeoutSeconds;
    if (timeoutS > this.limits.retentionSeconds) {
      throw new VisionqError(ErrorCode.InvalidArgument, `timeout_s=${timeoutS} is past the task's retention (TASK_RETENTION_S=${this.limits.retentionSeconds})`, [
        { field: 'timeout_s', message: `at most ${this.limits.retentionSeconds}` },
      ]);
    }
    return {
      id,
      tenant: principal.tenant,
      kind,
      model: model.ref,
      topK,
      output,
      priority: PRIORITIES[options.priority ?? 'normal'],
      ...(options.metadata === undefined ? {} : { metadata: options.metadata }),
      ...(timeoutS > 0 ? { deadline: new Date(Date.now() + timeoutS * 1000).toISOString() } : {}),
      ...(options.callback_url === undefined ? {} : { callbackUrl: options.callback_url, callbackEvents: CALLBACK_EVENTS.filter((e) => e === 'ended' || options.events?.includes(e)) }),
    };
  }

  /** A callback the deployment can sign, to a URL that cannot reach its own network (checked after DNS). */
  private async checkCallback(principal: Principal, url: string): Promise<void> {
    if (this.callbacks.secretsOf(principal.tenant).length === 0) {
      throw new VisionqError(ErrorCode.UnsupportedOption, `no webhook secret to sign callbacks of tenant "${principal.tenant}" (WEBHOOK_SECRET, or webhook_secret in its key entry)`, [
        { field: 'callback_url', message: 'no signing secret' },
      ]);
    }
    await checkCallbackUrl(url, this.callbacks.allowedHosts);
  }

  /** An object URI naming one image (not a folder) in a bucket tasks may read. */
  private checkImageUri(principal: Principal, uri: string, field: string): void {
    const { key } = parseObjectUri(uri, field);
    if (key === '' || key.endsWith('/')) {
      throw new VisionqError(ErrorCode.InvalidArgument, `${field}: ${uri} names a folder, not an image`, [{ field, message: 'expected s3://bucket/key of one image' }]);
    }
    checkObjectKey(key, uri, false, field);
    this.access.check(principal, uri, field);
  }

  /**
   * A prefix to list or write under, checked at submit so a task never fails later on it:
   * malformed or climbing out of its bucket is invalid_argument, a foreign bucket forbidden.
   */
  private checkPrefixUri(principal: Principal, uri: string, field: string): void {
    checkObjectKey(parseObjectUri(uri, field).key, uri, true, field);
    this.access.check(principal, uri, field);
  }

  private uploadTo(principal: Principal, id: string) {
    return { store: this.store, folder: joinObjectUri(this.access.uploadsOf(principal), `${id}/`), maxFileBytes: this.limits.maxImageBytes };
  }

  /** Every check runs before an upload is kept: a refused request leaves nothing in the store. */
  private async keptOnlyIfValid<T>(uploads: string[], check: () => T): Promise<T> {
    try {
      return check();
    } catch (err) {
      await this.discard(uploads);
      throw err;
    }
  }

  private async discard(uploads: string[]): Promise<void> {
    await Promise.all(
      uploads.map((uri) => this.store.delete(uri).catch((err: Error) => this.logger.warn('could not delete an upload of a refused request', { uri, error: err.message }))),
    );
  }
}
