import type { onnx } from 'onnx-proto';
import type { TensorRange } from './activation-calibrator';
import { dimsOf, floatValues } from './onnx-graph';

/** uint8 asymmetric parameters for a range (widened to include 0), as onnxruntime computes them. */
export function activationParameters(range: TensorRange): { scale: number; zeroPoint: number } {
  const min = Math.min(range.min, 0);
  const max = Math.max(range.max, 0);
  if (max === min) return { scale: 1, zeroPoint: 0 };
  const scale = Math.fround((max - min) / 255);
  return { scale, zeroPoint: Math.min(255, Math.max(0, Math.round(-min / scale))) };
}

/**
 * Largest quantised weight magnitude for a layer whose input has range `input`: 127, or
 * 63 when the input is signed (the image itself, or a residual sum; zero point far from 0).
 *
 * onnxruntime's u8×s8 kernels on x86 CPUs without VNNI (AVX2, plain AVX-512) multiply
 * with VPMADDUBSW, which sums two adjacent u8·s8 products into a saturating int16. Signed
 * inputs' uint8 values sit around the zero point, so with 8-bit weights that sum often
 * passes 32767 (VGG16's first conv: logit cosine 0.9987 instead of 0.9994); with 7-bit
 * weights it cannot (2·255·63 < 32767). ReLU outputs sit near zero and rarely get there
 * once layers are wide enough to have many small weights per channel, so those layers
 * keep 8 bits. This is onnxruntime's `reduce_range`, applied where it matters.
 */
export function weightLimit(input: TensorRange): number {
  return input.min < 0 ? 63 : 127;
}

/** A quantized constant: its values, and one scale per channel along `axis` (or one scale). */
export interface QuantizedTensor<T extends Int8Array | Int32Array> {
  dims: number[];
  values: T;
  scales: Float32Array;
  /** The channel axis of `scales`; undefined for one scale for the whole tensor. */
  axis?: number;
}

/**
 * int8 symmetric in [-limit, limit], zero point 0, one scale per index of `axis` (the
 * output channels: axis 0 of conv weights and of Gemm weights with transB=1, axis 1 of
 * [K, N] Gemm and MatMul weights), or one scale when `axis` is undefined.
 */
export function quantizeWeight(weight: onnx.ITensorProto, axis: number | undefined, limit: number): QuantizedTensor<Int8Array> {
  const dims = dimsOf(weight);
  const values = floatValues(weight);
  const channels = axis === undefined ? 1 : dims[axis]!;
  const inner = axis === undefined ? values.length : dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channelOf = (i: number) => Math.floor(i / inner) % channels;
  const absMax = new Float32Array(channels);
  for (let i = 0; i < values.length; i++) absMax[channelOf(i)] = Math.max(absMax[channelOf(i)]!, Math.abs(values[i]!));
  const scales = absMax.map((m) => (m > 0 ? Math.fround(m / limit) : 1));
  const quantized = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) quantized[i] = Math.max(-limit, Math.min(limit, Math.round(values[i]! / scales[channelOf(i)]!)));
  return { dims, values: quantized, scales, ...(axis === undefined ? {} : { axis }) };
}

/**
 * A bias as onnxruntime quantizes it: int32, scale input_scale × weight_scale[c], zero
 * point 0, one value per output channel (a [1, N] or one-value Gemm C becomes [N]).
 */
export function quantizeBias(bias: onnx.ITensorProto, inputScale: number, weight: QuantizedTensor<Int8Array>): QuantizedTensor<Int32Array> {
  const channels = weight.scales.length;
  const given = floatValues(bias);
  const values = given.length === 1 ? new Float32Array(channels).fill(given[0]!) : given;
  const scales = weight.scales.map((s) => inputScale * s);
  const quantized = new Int32Array(channels);
  for (let c = 0; c < channels; c++) quantized[c] = Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.round(values[c]! / scales[c]!)));
  return { dims: [channels], values: quantized, scales, axis: 0 };
}
