/** Layer counts of the VGG variants torchvision ships (cfgs A, B, D, E). */
export type VggDepth = 11 | 13 | 16 | 19;

/** What `buildVgg` builds. Every field is optional; defaults give torchvision's VGG16. */
export interface VggOptions {
  /** Weight layers: 11, 13, 16 or 19 (torchvision `vgg11` … `vgg19`, no batch norm). Default 16. */
  depth?: VggDepth;
  /**
   * Divides every conv channel count and the two 4096-wide hidden layers, for small
   * test models of the same layout. A divisor of 64 (1, 2, 4, … 64). Default 1.
   */
  widthDivisor?: number;
  /** Outputs of the last Linear layer. Default 1000 (ImageNet). */
  numClasses?: number;
  /** Seed of the weight generator: same options, same bytes. Integer. Default 0. */
  seed?: number;
}

export type ResolvedVggOptions = Readonly<Required<VggOptions>>;

/**
 * The network is built for this input size only: five 2×2 pools take 224 to 7, where
 * torchvision's `AdaptiveAvgPool2d((7, 7))` is the identity and is therefore left out.
 */
export const VGG_INPUT_SIZE = 224;
/** Side of the last feature map, the classifier sees `channels × 7 × 7` values. */
export const VGG_FEATURE_SIZE = 7;
const HIDDEN_WIDTH = 4096;

/** torchvision.models.vgg `cfgs`: conv output channels, `M` a 2×2 max-pool of stride 2. */
const CFGS: Record<VggDepth, readonly (number | 'M')[]> = {
  11: [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
  13: [64, 64, 'M', 128, 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
  16: [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'],
  19: [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512, 512, 512, 512, 'M'],
};

/**
 * One layer, named by its index in torchvision's `features` / `classifier` Sequential
 * (so `features.0.weight` is the first conv's weight, as in a torchvision state dict).
 */
export type VggLayer =
  | { kind: 'conv'; module: string; inChannels: number; outChannels: number }
  | { kind: 'relu'; module: string }
  | { kind: 'maxpool'; module: string }
  | { kind: 'linear'; module: string; inFeatures: number; outFeatures: number };

export interface VggPlan {
  options: ResolvedVggOptions;
  /** Every layer in order; the flatten between features and classifier is implicit. */
  layers: readonly VggLayer[];
}

/** Applies the defaults and rejects nonsense, naming the option. */
export function resolveVggOptions(options: VggOptions = {}): ResolvedVggOptions {
  const { depth = 16, widthDivisor = 1, numClasses = 1000, seed = 0 } = options;
  if (!(depth in CFGS)) throw new RangeError(`depth must be 11, 13, 16 or 19, got ${depth}`);
  if (!Number.isInteger(widthDivisor) || widthDivisor < 1 || 64 % widthDivisor !== 0) {
    throw new RangeError(`widthDivisor must divide 64 (1, 2, 4, … 64), got ${widthDivisor}`);
  }
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new RangeError(`numClasses must be a positive integer, got ${numClasses}`);
  if (!Number.isInteger(seed)) throw new TypeError(`seed must be an integer, got ${seed}`);
  return Object.freeze({ depth, widthDivisor, numClasses, seed });
}

/** The layer list of a VGG variant, without building anything. */
export function planVgg(options: VggOptions = {}): VggPlan {
  const resolved = resolveVggOptions(options);
  const divisor = resolved.widthDivisor;
  const layers: VggLayer[] = [];
  let channels = 3;
  let index = 0;
  for (const entry of CFGS[resolved.depth]) {
    if (entry === 'M') {
      layers.push({ kind: 'maxpool', module: `features.${index++}` });
      continue;
    }
    const outChannels = entry / divisor;
    layers.push({ kind: 'conv', module: `features.${index++}`, inChannels: channels, outChannels });
    layers.push({ kind: 'relu', module: `features.${index++}` });
    channels = outChannels;
  }
  const hidden = HIDDEN_WIDTH / divisor;
  const flat = channels * VGG_FEATURE_SIZE * VGG_FEATURE_SIZE;
  // torchvision: Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear. Dropout is the
  // identity at inference and has no node, but keeps its index in the module names.
  layers.push({ kind: 'linear', module: 'classifier.0', inFeatures: flat, outFeatures: hidden });
  layers.push({ kind: 'relu', module: 'classifier.1' });
  layers.push({ kind: 'linear', module: 'classifier.3', inFeatures: hidden, outFeatures: hidden });
  layers.push({ kind: 'relu', module: 'classifier.4' });
  layers.push({ kind: 'linear', module: 'classifier.6', inFeatures: hidden, outFeatures: resolved.numClasses });
  return { options: resolved, layers };
}

/** Weights and biases of the variant: 138,357,544 for the default VGG16. */
export function vggParameterCount(options: VggOptions = {}): number {
  let count = 0;
  for (const layer of planVgg(options).layers) {
    if (layer.kind === 'conv') count += layer.outChannels * (layer.inChannels * 9 + 1);
    if (layer.kind === 'linear') count += layer.outFeatures * (layer.inFeatures + 1);
  }
  return count;
}
