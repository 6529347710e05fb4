import { z } from 'zod';
import { errorBodySchema } from './error-body';
import { imageResultSchema } from './result-line';
import { healthResponseSchema, modelsResponseSchema, readinessResponseSchema } from './system-view';
import { batchFormSchema, batchJsonSchema, predictFormSchema, predictJsonSchema, resultsQuerySchema, retryJsonSchema, taskListQuerySchema } from './task.schema';
import { predictResponseSchema, resultsPageSchema, taskAcceptedSchema, taskListSchema, taskViewSchema } from './task-view';

/** What a route needs: no key ever (`public`), any valid key (`key`), or a key with this scope (or `admin`). */
export type RouteAccess = 'public' | 'key' | 'predict' | 'tasks:write' | 'tasks:read' | 'admin';

/**
 * One body of an answer: a JSON document, a stream of items (JSON Lines lines, SSE event
 * data) each matching `items`, or text.
 */
export type RouteContent = { json: z.ZodType } | { items: z.ZodType; description: string } | { text: string };

export interface RouteResponse {
  description: string;
  /** By media type. */
  content?: Record<string, RouteContent>;
  headers?: Record<string, string>;
}

export interface RouteHeader {
  name: string;
  description: string;
}

export interface ApiRoute {
  method: 'get' | 'post' | 'delete';
  /** Express's form (`/tasks/:id`), as the gateway registers it. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  access: RouteAccess;
  query?: z.ZodObject;
  headers?: RouteHeader[];
  /** JSON, and multipart form fields with one file field (`files` repeatable). */
  body?: { json?: z.ZodType; multipart?: { fields: z.ZodObject; files: string; repeated: boolean } };
  responses: Record<number, RouteResponse>;
}

/** The error answers a route may give, each with DESIGN.md's error body. */
const ERRORS: Record<number, string> = {
  400: 'The request is malformed or a value is out of range (`invalid_request`, `invalid_argument`, `unsupported_option`).',
  401: 'No valid API key (only when the gateway serves with API_KEYS_FILE); with `WWW-Authenticate: Bearer`.',
  403: "The key lacks the route's scope, or names a bucket or folder its tenant may not use (`forbidden`).",
  404: 'No such task for this tenant, model or image (`not_found`, `model_not_found`, `image_not_found`).',
  409: 'Conflict with the current state (`conflict`).',
  413: 'A body, form or file over its limit (`payload_too_large`, `image_too_large`).',
  415: 'Neither JSON nor multipart, a Content-Encoding, or an image format not served (`unsupported_media_type`, `unsupported_format`).',
  422: 'The image cannot be decoded (`image_decode_failed`).',
  429: "Over the tenant's rate or quota (`rate_limited`); `Retry-After` says when to try again.",
  503: 'Redis or the store does not answer (`unavailable`); nothing was enqueued.',
  504: "No result within PREDICT_TIMEOUT_MS (`timeout`); the task goes on, poll its `status_url`.",
};

function errors(...statuses: number[]): Record<number, RouteResponse> {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: ERRORS[status]!,
        content: { 'application/json': { json: errorBodySchema } },
        ...(status === 429 ? { headers: { 'Retry-After': 'Seconds to wait before trying again.' } } : {}),
      },
    ]),
  );
}

const json = (schema: z.ZodType): Record<string, RouteContent> => ({ 'application/json': { json: schema } });

/** What every route that wants a key may answer besides its own. */
const KEYED = [401, 429, 503];
const SCOPED = [401, 403, 429, 503];

/** Every path parameter of the routes, by name. */
export const PATH_PARAMETERS: Record<string, { description: string; schema: z.ZodType }> = {
  id: { description: "The task id (`task_id`); another tenant's task does not exist for the caller.", schema: z.string() },
};

/**
 * Every route of the gateway: the one table the OpenAPI document is generated from. A test
 * checks it against the routes the gateway registers, and real answers against it.
 */
export const API_ROUTES: readonly ApiRoute[] = [
  {
    method: 'post',
    path: '/predict',
    operationId: 'predict',
    summary: 'Classify one image, synchronously',
    description: 'A multipart upload (field `file`) or a JSON object URI. Runs on the workers ahead of batch work.',
    access: 'predict',
    body: { json: predictJsonSchema, multipart: { fields: predictFormSchema, files: 'file', repeated: false } },
    responses: {
      200: { description: 'The top `top_k` classes.', content: json(predictResponseSchema) },
      ...errors(400, ...SCOPED, 404, 413, 415, 422, 504),
    },
  },
  {
    method: 'post',
    path: '/batch_predict',
    operationId: 'batchPredict',
    summary: 'Submit a task of many images',
    description: 'A JSON list of `images`, a `source` prefix, or a multipart upload of `files` (the other options as form fields, `metadata` as a JSON string). Answered at once; the task runs on the workers.',
    access: 'tasks:write',
    headers: [{ name: 'Idempotency-Key', description: "A retried submit with the same key (per tenant) and body returns the same task, with `idempotent-replayed: true`; a different body under it is 409." }],
    body: { json: batchJsonSchema, multipart: { fields: batchFormSchema, files: 'files', repeated: true } },
    responses: {
      202: {
        description: 'The task is queued.',
        content: json(taskAcceptedSchema),
        headers: { Location: 'The task\'s `status_url`.', 'idempotent-replayed': '`true` when an earlier submit under the same Idempotency-Key made the task.' },
      },
      ...errors(400, ...SCOPED, 404, 409, 413, 415),
    },
  },
  {
    method: 'get',
    path: '/tasks',
    operationId: 'listTasks',
    summary: "The caller's tasks, newest first, by status, page by page",
    description: "Tasks of the key's tenant still kept (TASK_RETENTION_S), each as `GET /tasks/{id}` shows it but without inline results.",
    access: 'tasks:read',
    query: taskListQuerySchema,
    responses: { 200: { description: 'A page of tasks.', content: json(taskListSchema) }, ...errors(400, ...SCOPED) },
  },
  {
    method: 'get',
    path: '/tasks/:id',
    operationId: 'getTask',
    summary: 'A task: status, exact progress, callback, inline results of small ended tasks',
    access: 'tasks:read',
    responses: { 200: { description: 'The task view.', content: json(taskViewSchema) }, ...errors(...SCOPED, 404) },
  },
  {
    method: 'get',
    path: '/tasks/:id/results',
    operationId: 'getTaskResults',
    summary: "A task's result lines, by page or as one JSON Lines stream",
    description: 'One line per image, in chunk order, from committed chunks only. `Accept: application/x-ndjson` or `format=ndjson` streams every line.',
    access: 'tasks:read',
    query: resultsQuerySchema,
    responses: {
      200: {
        description: 'A page of results, or every line as JSON Lines.',
        content: {
          'application/json': { json: resultsPageSchema },
          'application/x-ndjson; charset=utf-8': { items: imageResultSchema, description: 'One `ImageResult` per line.' },
        },
      },
      ...errors(400, ...SCOPED, 404),
    },
  },
  {
    method: 'get',
    path: '/tasks/:id/events',
    operationId: 'getTaskEvents',
    summary: "Live progress: the task's events as Server-Sent Events",
    description:
      'Events `progress` (created, running, each committed chunk or listed page) and `ended`, each with the task view as it stood after the change; the SSE `id` is the log entry\'s, so a reconnect with `Last-Event-ID` gets exactly what it missed. A comment line every EVENTS_HEARTBEAT_MS; closed after `ended`.',
    access: 'tasks:read',
    headers: [{ name: 'Last-Event-ID', description: 'Resume after this event id (`<ms>-<seq>`), as EventSource sends on a reconnect; or the query `last_event_id`.' }],
    responses: {
      200: { description: 'The event stream.', content: { 'text/event-stream; charset=utf-8': { items: taskViewSchema, description: 'Each event\'s `data` is a `TaskView`.' } } },
      ...errors(400, ...SCOPED, 404),
    },
  },
  {
    method: 'delete',
    path: '/tasks/:id',
    operationId: 'cancelTask',
    summary: 'Cancel a task',
    description: 'No new chunk starts and chunks running stop taking images; images already counted stay in the results.',
    access: 'tasks:write',
    responses: { 200: { description: 'The task view, `cancelled`.', content: json(taskViewSchema) }, ...errors(...SCOPED, 404), 409: { ...errors(409)[409]!, description: 'The task has already ended (`conflict`).' } },
  },
  {
    method: 'post',
    path: '/tasks/:id/retry',
    operationId: 'retryTask',
    summary: 'Run again the failed chunks of an ended task',
    description:
      'Exactly once per image: the chunks that used up their attempts (and a failed `source` listing), and with `failed_images` every image whose result line is an error, run again as the next retry round; chunks already counted never run again. The body is optional.',
    access: 'tasks:write',
    body: { json: retryJsonSchema },
    responses: {
      202: { description: 'The task view, `running` again, `retries` counting the rounds.', content: json(taskViewSchema) },
      ...errors(400, ...SCOPED, 404, 415),
      409: { ...errors(409)[409]!, description: 'Nothing to run again: the task is still running, ended with nothing failed, was cancelled or passed its deadline (`conflict`).' },
      503: { ...errors(503)[503]!, description: 'The retry is under way but its jobs could not all be queued: repeat the request to queue them (`unavailable`).' },
    },
  },
  {
    method: 'get',
    path: '/models',
    operationId: 'listModels',
    summary: 'Models served, with versions, input shapes and live workers',
    access: 'key',
    responses: { 200: { description: 'Every model of MODELS_DIR.', content: json(modelsResponseSchema) }, ...errors(...KEYED) },
  },
  {
    method: 'get',
    path: '/healthz',
    operationId: 'health',
    summary: 'Liveness: the process answers',
    access: 'public',
    responses: { 200: { description: 'Alive.', content: json(healthResponseSchema) } },
  },
  {
    method: 'get',
    path: '/readyz',
    operationId: 'readiness',
    summary: 'Readiness: Redis, the store and at least one worker answer, and the gateway is not draining',
    access: 'key',
    responses: {
      200: { description: 'Ready.', content: json(readinessResponseSchema) },
      // A key with a rate limit meets Redis before the checks do: that refusal is an error body.
      503: { description: 'Not ready: the failing checks say why.', content: json(z.union([readinessResponseSchema, errorBodySchema])) },
      ...errors(401, 429),
    },
  },
  {
    method: 'get',
    path: '/metrics',
    operationId: 'metrics',
    summary: 'Prometheus metrics of this gateway',
    access: 'admin',
    responses: {
      200: { description: 'Prometheus text exposition.', content: { 'text/plain; version=0.0.4; charset=utf-8': { text: 'Prometheus text format 0.0.4.' } } },
      ...errors(...SCOPED),
    },
  },
  {
    method: 'get',
    path: '/admin/queues',
    operationId: 'queueUi',
    summary: 'The queue UI (bull-board): every queue, its jobs, failures and retries',
    description:
      'A page for a browser, with its own JSON API and assets under `/admin/queues/` (not described here). A browser is asked for the key with `WWW-Authenticate: Basic`: any user name, the API key as the password.',
    access: 'admin',
    responses: {
      200: { description: 'The page.', content: { 'text/html; charset=utf-8': { text: 'The bull-board page.' } } },
      ...errors(...SCOPED),
    },
  },
  {
    method: 'get',
    path: '/openapi.json',
    operationId: 'openApiDocument',
    summary: 'This document',
    description: 'Needs no key: it holds nothing tenant-specific.',
    access: 'public',
    responses: { 200: { description: 'The OpenAPI 3.1 document.', content: { 'application/json': { json: z.looseObject({ openapi: z.literal('3.1.1') }) } } } },
  },
  {
    method: 'get',
    path: '/docs',
    operationId: 'docs',
    summary: 'This document as a page to read',
    description: 'Needs no key, so a browser can open it; its renderer (Swagger UI) is served by the gateway itself.',
    access: 'public',
    responses: { 200: { description: 'An HTML page.', content: { 'text/html; charset=utf-8': { text: 'Swagger UI rendering `/openapi.json`.' } } } },
  },
];
