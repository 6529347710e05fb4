import type { Prediction } from '@visionq/api';

/** Numerically stable softmax of `row`, in place. */
export function softmaxInPlace(row: Float32Array): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > max) max = row[i]!;
  let sum = 0;
  for (let i = 0; i < row.length; i++) {
    const e = Math.exp(row[i]! - max);
    row[i] = e;
    sum += e;
  }
  for (let i = 0; i < row.length; i++) row[i] = row[i]! / sum;
  return row;
}

/**
 * The `k` most probable classes, most probable first; ties go to the lower class id.
 * A partial selection: O(n·k), and k is small.
 */
export function topK(probabilities: Float32Array, k: number, labels: readonly string[]): Prediction[] {
  const count = Math.min(k, probabilities.length);
  const best: number[] = [];
  if (count <= 0) return [];
  for (let i = 0; i < probabilities.length; i++) {
    const p = probabilities[i]!;
    if (best.length === count && !(p > probabilities[best[count - 1]!]!)) continue;
    let at = best.length;
    while (at > 0 && probabilities[best[at - 1]!]! < p) at--;
    best.splice(at, 0, i);
    if (best.length > count) best.pop();
  }
  return best.map((i) => ({ class_id: i, label: labels[i] ?? `class_${i}`, probability: probabilities[i]! }));
}
