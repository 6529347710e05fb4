/**
 * How one model wants its pixels: what the model's manifest declares, in the form the
 * preprocessor uses.
 */
export interface PreprocessSpec {
  /** Model input height and width in pixels. */
  height: number;
  width: number;
  /**
   * `shorter_side`: scale so the shorter side is `resizeSize` (aspect kept), then crop
   * the centre `height`×`width` — torchvision's `Resize(resizeSize)` + `CenterCrop`.
   * `direct`: scale straight to `height`×`width`, aspect not kept — `Resize((h, w))`.
   * `letterbox`: scale to fit inside `height`×`width` (aspect kept), centred on a canvas of
   * `padValue` — Pillow's `ImageOps.pad`, as detection-style models are fed.
   */
  resizeMode: 'shorter_side' | 'direct' | 'letterbox';
  /** Target of the shorter side in `shorter_side` mode; ignored in `direct` mode. */
  resizeSize: number;
  /** Per channel, in the model's channel order, applied as ((pixel / scale) - mean) / std. */
  mean: [number, number, number];
  std: [number, number, number];
  /** Divisor that maps 8-bit values to the range mean/std refer to; 255 for torchvision. */
  scale: number;
  channelOrder: 'RGB' | 'BGR';
  /** How the model's input tensor is laid out: planar `NCHW` (default, PyTorch's) or interleaved `NHWC` (TensorFlow's). */
  layout?: 'NCHW' | 'NHWC';
  /** RGB 0–255 of the letterbox's canvas, and of CenterCrop's padding; default black. */
  padValue?: [number, number, number];
  /** How the resize samples, each byte-exact with Pillow's (torchvision's `interpolation=`); default `bilinear`. */
  interpolation?: Interpolation;
  /**
   * `exact` (default): torchvision's pixels, byte for byte. `fast`: large JPEG and WebP
   * images are decoded at 1/2, 1/4 or 1/8 scale (never below the resize target) before
   * the same resize: several times cheaper, a few levels off exact (see the README).
   */
  quality?: 'exact' | 'fast';
}

/** PIL's resampling filters visionq reproduces. */
export type Interpolation = 'bilinear' | 'bicubic' | 'nearest';

/**
 * The preprocessed image: 8-bit RGB, height×width×3 interleaved, already resized and
 * cropped. Kept as bytes (a quarter of float32) until it is written into a batch.
 */
export interface PreprocessedImage {
  pixels: Uint8Array;
  width: number;
  height: number;
}

/** torchvision's ImageNet recipe: Resize(256), CenterCrop(224), ImageNet mean and std. */
export const IMAGENET_SPEC: PreprocessSpec = {
  height: 224,
  width: 224,
  resizeMode: 'shorter_side',
  resizeSize: 256,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  scale: 255,
  channelOrder: 'RGB',
};
