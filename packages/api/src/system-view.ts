import { z } from 'zod';

export const modelViewSchema = z
  .object({
    name: z.string(),
    version: z.string(),
    ref: z.string().describe('`NAME@VERSION`: names exactly this version in a request.'),
    description: z.string().optional(),
    default: z.boolean().describe('Served when a request names no model.'),
    default_version: z.boolean().describe('Served when a request names the model without a version.'),
    input: z.object({ name: z.string(), shape: z.array(z.union([z.number().int(), z.string()])).describe('Dimensions; a name for a dynamic one (`N`).') }),
    classes: z.number().int().min(1),
    metrics: z
      .object({
        split: z.string().optional(),
        images: z.number().int().min(0).optional(),
        accuracy: z.number().optional(),
        cohen_kappa: z.number().optional(),
        per_class: z.array(z.object({ label: z.string(), precision: z.number().nullable(), recall: z.number().nullable(), support: z.number().int() }).loose()).optional(),
      })
      .optional()
      .describe("The version's evaluation on its validation split (`metrics.json`, written by `visionq train`)."),
    workers: z.number().int().min(0).describe('Live workers serving it.'),
    providers: z.array(z.string()).describe('Execution providers those workers run it on (`cpu`, `cuda`, `tensorrt`).'),
  })
  .meta({ id: 'ModelView', description: 'A model version as `GET /models` shows it: one entry per version.' });
export type ModelView = z.infer<typeof modelViewSchema>;

export const modelsResponseSchema = z.object({ models: z.array(modelViewSchema) }).meta({ id: 'ModelsResponse', description: '200 of `GET /models`.' });
export type ModelsResponse = z.infer<typeof modelsResponseSchema>;

export const healthResponseSchema = z.object({ status: z.literal('ok') }).meta({ id: 'HealthResponse', description: '`GET /healthz`: the process answers.' });
export type HealthResponse = z.infer<typeof healthResponseSchema>;

export const readinessResponseSchema = z
  .object({
    status: z.enum(['ready', 'not_ready']),
    checks: z.record(z.string(), z.string()).describe('Each dependency (`gateway`, `redis`, `store`, `workers`): `ok` (or a detail) or `unavailable: …`.'),
  })
  .meta({ id: 'ReadinessResponse', description: '`GET /readyz`: whether this gateway can do work.' });
export type ReadinessResponse = z.infer<typeof readinessResponseSchema>;
