import { z } from 'zod';
import { errorCodeSchema, type ErrorCode } from './error-codes';

export const predictionSchema = z
  .object({
    class_id: z.number().int().min(0).describe("Index of the class in the model's output."),
    label: z.string(),
    probability: z.number().min(0).max(1).describe('Softmax probability.'),
  })
  .meta({ id: 'Prediction', description: 'One class of a prediction, as it appears in API responses and result lines.' });
export type Prediction = z.infer<typeof predictionSchema>;

// Which model version ran: on every line a worker writes (absent only on lines written before versions existed).
const ranBy = {
  model: z.string().optional().describe('The model that ran.'),
  model_version: z.string().optional().describe('Its version.'),
};

export const imageResultSchema = z
  .union([
    z.object({ image: z.string().describe('The image URI (`s3://bucket/key`).'), ...ranBy, predictions: z.array(predictionSchema).describe('Most probable first, `top_k` of them.') }),
    z.object({ image: z.string(), ...ranBy, error: z.object({ code: errorCodeSchema, message: z.string() }).describe('Why this image has no prediction; the task went on.') }),
  ])
  .meta({ id: 'ImageResult', description: "One image's outcome: a line of a task's results (JSON Lines), exactly one per image." });
export type ImageResult = z.infer<typeof imageResultSchema>;

export function imageError(image: string, code: ErrorCode, message: string): ImageResult {
  return { image, error: { code, message } };
}
