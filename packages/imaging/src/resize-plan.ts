import type { PreprocessSpec } from './preprocess-spec';

/**
 * Where torchvision's `Resize` + `CenterCrop` (or Pillow's `ImageOps.pad`) put an image of
 * a given size: the size it is resized to, and the window of that resized image the model
 * sees. The window may reach outside the resized image (when it is smaller than the crop,
 * or letterboxed); that part is padding.
 */
export interface ResizePlan {
  resizedWidth: number;
  resizedHeight: number;
  /** Crop window in resized-image coordinates; left/top may be negative (padding). */
  left: number;
  top: number;
  width: number;
  height: number;
}

/** Python 3's `round()`: halves go to the even neighbour. */
function pythonRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d !== 0.5) return Math.round(x);
  return f % 2 === 0 ? f : f + 1;
}

/**
 * torchvision 0.14 `_compute_resized_output_size` for an int size: the shorter side
 * becomes `size` and the longer `int(size * long / short)` (truncated, in float64).
 */
function shorterSideSize(width: number, height: number, size: number): [number, number] {
  if (width <= height) return [size, Math.trunc((size * height) / width)];
  return [Math.trunc((size * width) / height), size];
}

/** One axis of torchvision's `center_crop`, padding included. */
function centerOffset(imageSize: number, cropSize: number): number {
  // Pads (crop - image) // 2 before; the padded image is then exactly cropSize wide.
  if (cropSize > imageSize) return -Math.floor((cropSize - imageSize) / 2);
  return pythonRound((imageSize - cropSize) / 2);
}

/**
 * Pillow 9.4's `ImageOps.pad(image, (w, h), centering=(0.5, 0.5))`: the side that is too
 * long fills its target, the other is `round(other / long * target)` in Pillow's float
 * order, and the image is pasted at the rounded centre. (Pillow leaves the image unresized
 * when that rounding gives the target back; so does this.)
 */
function letterbox(width: number, height: number, spec: PreprocessSpec): ResizePlan {
  const target = { resizedWidth: spec.width, resizedHeight: spec.height, left: 0, top: 0, width: spec.width, height: spec.height };
  const imageRatio = width / height;
  const targetRatio = spec.width / spec.height;
  if (imageRatio === targetRatio) return target;
  if (imageRatio > targetRatio) {
    const newHeight = pythonRound((height / width) * spec.width);
    const top = -pythonRound((spec.height - newHeight) * 0.5);
    return newHeight === spec.height ? { ...target, resizedWidth: width, resizedHeight: height, top } : { ...target, resizedHeight: newHeight, top };
  }
  const newWidth = pythonRound((width / height) * spec.height);
  const left = -pythonRound((spec.width - newWidth) * 0.5);
  return newWidth === spec.width ? { ...target, resizedWidth: width, resizedHeight: height, left } : { ...target, resizedWidth: newWidth, left };
}

export function planResize(width: number, height: number, spec: PreprocessSpec): ResizePlan {
  if (spec.resizeMode === 'letterbox') return letterbox(width, height, spec);
  if (spec.resizeMode === 'direct') {
    return { resizedWidth: spec.width, resizedHeight: spec.height, left: 0, top: 0, width: spec.width, height: spec.height };
  }
  const [resizedWidth, resizedHeight] = shorterSideSize(width, height, spec.resizeSize);
  return {
    resizedWidth,
    resizedHeight,
    left: centerOffset(resizedWidth, spec.width),
    top: centerOffset(resizedHeight, spec.height),
    width: spec.width,
    height: spec.height,
  };
}
