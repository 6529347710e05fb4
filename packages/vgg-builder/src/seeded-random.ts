/**
 * A small, fast, deterministic pseudo-random generator for model weights: mulberry32 for
 * uniform 32-bit values, Marsaglia's polar form of Box–Muller for normals. Not for
 * anything that needs unpredictability. The same seed gives the same numbers on every
 * platform Node runs on (integer arithmetic through `Math.imul`; V8's `Math.log` is a fixed
 * fdlibm port).
 */
export class SeededRandom {
  private state: number;
  /** Second normal of the last polar pair, not yet handed out. */
  private spare: number | undefined;

  /** `seed` is taken modulo 2^32. */
  constructor(seed: number) {
    if (!Number.isInteger(seed)) throw new TypeError(`seed must be an integer, got ${seed}`);
    this.state = seed >>> 0;
  }

  /** Uniform integer in [0, 2^32). */
  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    return mix(this.state);
  }

  /** Uniform double in [0, 1). */
  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }

  /**
   * Fills `target` with normal(0, std) values. Filling one array or consecutive pieces
   * of it gives the same numbers. Inlined because a big model draws 10^8 of them.
   */
  fillNormal(target: Float32Array, std: number): Float32Array {
    let state = this.state;
    let i = 0;
    if (this.spare !== undefined && target.length > 0) {
      target[i++] = std * this.spare;
      this.spare = undefined;
    }
    while (i < target.length) {
      state = (state + 0x6d2b79f5) >>> 0;
      const u = mix(state) * (2 / 4294967296) - 1;
      state = (state + 0x6d2b79f5) >>> 0;
      const v = mix(state) * (2 / 4294967296) - 1;
      const s = u * u + v * v;
      if (s >= 1 || s === 0) continue;
      const f = Math.sqrt((-2 * Math.log(s)) / s);
      target[i++] = std * u * f;
      if (i < target.length) target[i++] = std * v * f;
      else this.spare = v * f;
    }
    this.state = state;
    return target;
  }
}

/** mulberry32's output function. */
function mix(state: number): number {
  let t = Math.imul(state ^ (state >>> 15), state | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}

/**
 * An independent seed for stream `stream` of generator `seed` (splitmix-style mixing), so
 * that each weight tensor has its own stream and does not shift when another changes.
 */
export function deriveSeed(seed: number, stream: number): number {
  let z = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(stream + 1, 0x85ebca6b)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x7feb352d);
  z = Math.imul(z ^ (z >>> 15), 0x846ca68b);
  return (z ^ (z >>> 16)) >>> 0;
}
