import { ErrorCode } from './error-codes';
import { VisionqError } from './visionq-error';

/**
 * A served model version is named `NAME@VERSION` (its ref): queues, backlogs, sessions and
 * heartbeats are per ref, so a version is never fed work meant for another.
 */
export function modelRef(name: string, version: string): string {
  return `${name}@${version}`;
}

/** `NAME` or `NAME@VERSION`, as requests, `DEFAULT_MODEL` and `WORKER_MODELS` name a model. */
export function parseModelSpec(spec: string): { name: string; version?: string } {
  const at = spec.indexOf('@');
  if (at < 0) return { name: spec };
  const name = spec.slice(0, at);
  const version = spec.slice(at + 1);
  if (name === '' || version === '' || version.includes('@')) {
    throw new VisionqError(ErrorCode.InvalidArgument, `model "${spec}" is neither NAME nor NAME@VERSION`, [{ field: 'model', message: 'bad model name' }]);
  }
  return { name, version };
}

/** Metric labels of a ref: the model's name and its version, so dashboards can sum a model over its versions. */
export function modelLabels(ref: string): { model: string; version: string } {
  const { name, version } = parseModelSpec(ref);
  return { model: name, version: version ?? '' };
}

/** Versions in the order "newest last": numerically where both are numbers, else as text. */
export function compareVersions(a: string, b: string): number {
  const na = /^\d+$/.test(a);
  const nb = /^\d+$/.test(b);
  if (na && nb) return Number(a) - Number(b) || a.localeCompare(b);
  if (na !== nb) return na ? -1 : 1;
  return a.localeCompare(b);
}
