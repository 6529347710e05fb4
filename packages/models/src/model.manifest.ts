import { z } from 'zod';

/**
 * `manifest.json` beside each `model.onnx`. Field names are snake_case, as in the files
 * users write. Example (torchvision VGG16):
 *
 * {
 *   "name": "vgg16", "version": "1", "description": "…",
 *   "input":  { "name": "input", "layout": "NCHW", "height": 224, "width": 224, "channels": 3 },
 *   "output": { "name": "logits", "activation": "softmax" },
 *   "preprocess": { "resize_mode": "shorter_side", "resize_size": 256,
 *                   "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
 *                   "scale": 255, "channel_order": "RGB", "interpolation": "bilinear", "quality": "exact" },
 *   "labels": "labels.txt"
 * }
 *
 * `output.activation`: `softmax` when the graph returns logits (visionq applies softmax),
 * `none` when it already returns probabilities.
 */
/** A version folder's name. */
export const VERSION = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export const manifestSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'lower-case letters, digits, ".", "_" and "-"'),
    // A versioned folder's version is its folder's name: when given here it must be that name. A flat folder's, or `1`.
    version: z.string().regex(VERSION, 'letters, digits, ".", "_" and "-"').optional(),
    description: z.string().optional(),
    input: z.object({
      name: z.string().min(1),
      layout: z.enum(['NCHW', 'NHWC']).default('NCHW'),
      height: z.number().int().positive(),
      width: z.number().int().positive(),
      channels: z.literal(3),
    }),
    output: z.object({
      name: z.string().min(1),
      activation: z.enum(['softmax', 'none']).default('softmax'),
    }),
    preprocess: z.object({
      resize_mode: z.enum(['shorter_side', 'direct', 'letterbox']),
      resize_size: z.number().int().positive().optional(),
      // timm's eval recipe for a square input: shorter side to floor(size / crop_pct), then the centre crop.
      crop_pct: z.number().gt(0).lte(1).optional(),
      // The letterbox's canvas (and CenterCrop's padding): one 0–255 value for every channel, or one per RGB channel.
      pad_value: z.union([z.number().int().min(0).max(255), z.tuple([z.number().int().min(0).max(255), z.number().int().min(0).max(255), z.number().int().min(0).max(255)])]).optional(),
      mean: z.tuple([z.number(), z.number(), z.number()]),
      std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]),
      scale: z.number().positive().default(255),
      channel_order: z.enum(['RGB', 'BGR']).default('RGB'),
      // PIL's resampling filter, as torchvision's `interpolation=`; each byte-exact with Pillow.
      interpolation: z.enum(['bilinear', 'bicubic', 'nearest']).default('bilinear'),
      // `fast`: large JPEG/WebP decoded at a reduced scale first; not torchvision-exact.
      quality: z.enum(['exact', 'fast']).default('exact'),
    }),
    labels: z.string().min(1).default('labels.txt'),
  })
  .strict();

export type ModelManifest = z.infer<typeof manifestSchema>;

/**
 * `metrics.json` beside a trained model (written by `visionq train`): its evaluation on the
 * validation split. Only the summary fields are read; the rest is shown as written.
 */
export const modelMetricsSchema = z.looseObject({
  split: z.string().optional(),
  images: z.number().int().min(0).optional(),
  accuracy: z.number().min(0).max(1).optional(),
  cohen_kappa: z.number().min(-1).max(1).optional(),
  per_class: z.array(z.looseObject({ label: z.string(), precision: z.number().nullable(), recall: z.number().nullable(), support: z.number().int().min(0) })).optional(),
});

export type ModelMetrics = z.infer<typeof modelMetricsSchema>;
