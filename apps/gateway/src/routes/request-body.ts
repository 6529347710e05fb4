import { createHash } from 'node:crypto';
import type { Request } from 'express';
import type { z } from 'zod';
import { ErrorCode, VisionqError, type ErrorDetail } from '@visionq/api';

export function isMultipart(req: Request): boolean {
  return req.is('multipart/form-data') === 'multipart/form-data';
}

/** JSON or multipart; anything else is 415 before the body is read. */
export function requireJson(req: Request): void {
  if (!req.is('application/json')) {
    throw new VisionqError(ErrorCode.UnsupportedMediaType, `send application/json or multipart/form-data, not ${req.get('content-type') ?? 'no content type'}`);
  }
}

/** Parses with `schema`; every problem becomes one detail of a 400 `invalid_request`. */
export function parseRequest<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new VisionqError(ErrorCode.InvalidRequest, 'the body must be a JSON object');
  }
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const details: ErrorDetail[] = parsed.error.issues.map((i) => ({ field: i.path.join('.') || undefined, message: i.message }));
  throw new VisionqError(ErrorCode.InvalidRequest, `invalid request: ${details.map((d) => (d.field ? `${d.field}: ${d.message}` : d.message)).join('; ')}`, details);
}

/** A JSON request's identity for Idempotency-Key. */
export function digestOf(body: unknown): string {
  return createHash('sha256').update(JSON.stringify(body)).digest('hex');
}
