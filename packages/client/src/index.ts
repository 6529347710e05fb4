// A typed client of the visionq gateway, on the platform fetch: Node ≥ 20 and browsers.
// Nothing here imports a Node module; files from disk are `@visionq/client/node`.
export { VisionqClient } from './visionq.client';
export type { ListOptions, PredictOptions, SubmitRequest, Upload, VisionqClientOptions, WaitOptions } from './visionq.client';
export type { TaskList } from '@visionq/api';
export { VisionqClientError } from './client.error';
export type { RetryPolicy } from './retry.policy';
