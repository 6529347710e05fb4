import { randomUUID } from 'node:crypto';
import { ErrorCode, VisionqError } from '@visionq/errors';
import type { TaskKind, TaskSpec } from '@visionq/tasks';
import type { GatewayDeps } from './gateway-deps';
import { PRIORITIES, type SubmitOptions } from './request-schemas';

const DEFAULT_TOP_K = 5;

export function newTaskId(): string {
  return randomUUID();
}

/**
 * Checks a submit's options against what this deployment serves and allows, and fixes
 * the task's spec. Throws the request's error before anything is stored or enqueued.
 */
export function buildTaskSpec(deps: GatewayDeps, id: string, kind: TaskKind, options: SubmitOptions): TaskSpec {
  if (options.callback_url !== undefined) {
    throw new VisionqError(ErrorCode.UnsupportedOption, 'callback_url is not supported yet: poll GET /tasks/:id', [{ field: 'callback_url', message: 'not supported' }]);
  }
  const model = deps.catalog.get(options.model);
  const topK = options.top_k ?? Math.min(DEFAULT_TOP_K, model.labels.length);
  if (topK > model.labels.length) {
    throw new VisionqError(ErrorCode.InvalidArgument, `top_k=${topK} is more than the ${model.labels.length} classes of model "${model.manifest.name}"`, [
      { field: 'top_k', message: `at most ${model.labels.length}` },
    ]);
  }
  const output = options.output ?? deps.config.store.resultsUri;
  deps.buckets.check(output, 'output');
  return {
    id,
    kind,
    model: model.manifest.name,
    topK,
    output,
    priority: PRIORITIES[options.priority ?? 'normal'],
    ...(options.metadata === undefined ? {} : { metadata: options.metadata }),
  };
}
