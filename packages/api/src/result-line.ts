import type { ErrorCode } from './error-codes';

/** One class of a prediction, as it appears in API responses and result lines. */
export interface Prediction {
  class_id: number;
  label: string;
  probability: number;
}

/** One image's outcome: a line of a task's results (JSON Lines), exactly one per image. */
export type ImageResult =
  | { image: string; predictions: Prediction[] }
  | { image: string; error: { code: ErrorCode; message: string } };

export function imageError(image: string, code: ErrorCode, message: string): ImageResult {
  return { image, error: { code, message } };
}
