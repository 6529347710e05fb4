// The wire contract: every body the gateway writes and a client reads, typed once.
// Nothing here imports a runtime service.
export { ErrorCode, httpStatusOf } from './error-codes';
export { ConfigError, ImageError, ModelError, PredictTimeoutError, UnavailableError, VisionqError } from './visionq-error';
export type { VisionqErrorOptions } from './visionq-error';
export { errorBody } from './error-body';
export type { ErrorBody, ErrorDetail } from './error-body';
export { BUCKET_NAME, folderUriSchema } from './object-uri.schema';
export { imageError } from './result-line';
export { compareVersions, modelLabels, modelRef, parseModelSpec } from './model-ref';
export type { ImageResult, Prediction } from './result-line';
export {
  batchFormSchema,
  batchJsonSchema,
  CALLBACK_EVENTS,
  DEFAULT_TOP_K,
  isTerminal,
  predictFormSchema,
  predictJsonSchema,
  PRIORITIES,
  resultsQuerySchema,
  retryJsonSchema,
  taskListQuerySchema,
  TERMINAL_STATUSES,
} from './task.schema';
export type { BatchRequest, CallbackEvent, PredictRequest, Priority, RetryRequest, SubmitOptions, TaskStatus } from './task.schema';
export { resultsUrl, statusUrl } from './task-view';
export type { CallbackView, FailedChunkView, FailedListingView, PredictResponse, ResultsPage, TaskAccepted, TaskFailure, TaskList, TaskProgress, TaskView } from './task-view';
export type { TaskEvent, TaskEventType } from './task-event';
export type { HealthResponse, ModelsResponse, ModelView, ReadinessResponse } from './system-view';
export { openApiDocument, openApiPath } from './openapi.document';
