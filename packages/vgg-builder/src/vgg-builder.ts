import { onnx } from 'onnx-proto';
import { DataType, encodeModel, intAttribute, intsAttribute, node, valueInfo, type GeneratedTensor } from '@visionq/quantization';
import { deriveSeed, SeededRandom } from './seeded-random';
import { planVgg, VGG_INPUT_SIZE, type VggLayer, type VggOptions, type VggPlan } from './vgg-config';

export const VGG_INPUT_NAME = 'input';
export const VGG_OUTPUT_NAME = 'logits';

/**
 * Builds a VGG in torchvision's layout with seeded random weights and returns the ONNX
 * model (opset 13): input `input` float32 [N,3,224,224], output `logits` float32 [N,C],
 * N dynamic. Initializers carry torchvision's state-dict names (`features.0.weight`,
 * `classifier.6.bias`, …), activations the name of the module that produced them.
 * Conv is 3×3 pad 1 + Relu, MaxPool 2×2 stride 2, Flatten, Linear is Gemm with
 * transB=1 (the weight stays [out, in] as in PyTorch; onnxruntime runs it as one SGEMM).
 */
export function buildVgg(options: VggOptions = {}): Uint8Array {
  const plan = planVgg(options);
  const { graph, weights } = vggGraph(plan);
  return encodeModel(graph, describe(plan), weights);
}

/**
 * Standard deviation of each weight tensor, and why it is not quite torchvision's.
 *
 * torchvision draws conv weights from kaiming-normal (fan_out, relu), Linear weights from
 * normal(0, 0.01), biases 0. With zero biases the network is positively homogeneous, so
 * those choices only set the scale of the logits, and on random weights that scale is
 * useless: each conv multiplies the activations' mean square by in/out (3/512 across the
 * features), each Linear+ReLU by fan_in·1e-4/2, and VGG16's logits end up with a spread
 * of about 0.05 (estimated from those factors): a softmax flat to 1e-3 and top-1/top-2 margins far below any
 * quantisation error, which makes agreement figures meaningless.
 *
 * So: convs keep torchvision's kaiming fan_out (on their own they only set a global
 * factor); the two hidden Linears use kaiming fan_in, √(2/fan_in), which keeps the scale
 * from layer to layer; the last Linear is normal(0, σ) with σ = 2/√(fan_in·m), m the
 * mean square predicted for the classifier's input, so that logits have a spread of a
 * few units whatever the depth and width, like a trained classifier's (VGG16 on photos:
 * about 4; small variants 2–5). Biases stay 0: a per-class offset would be the same for
 * every image and would only make every image agree on the same class.
 */
function weightStd(layer: VggLayer & { kind: 'conv' | 'linear' }, plan: VggPlan): number {
  if (layer.kind === 'conv') return Math.sqrt(2 / (layer.outChannels * 9));
  if (layer.module !== 'classifier.6') return Math.sqrt(2 / layer.inFeatures);
  return LOGIT_SCALE / Math.sqrt(layer.inFeatures * featureMeanSquare(plan));
}

/** Target spread of the logits for inputs of unit mean square; see `weightStd`. */
const LOGIT_SCALE = 2;

/**
 * Predicted mean square of the classifier's input for inputs of unit mean square: each
 * conv+relu multiplies it by in/out (kaiming fan_out), each kaiming fan_in Linear+ReLU by 1.
 */
function featureMeanSquare(plan: VggPlan): number {
  let meanSquare = 1;
  for (const layer of plan.layers) if (layer.kind === 'conv') meanSquare *= layer.inChannels / layer.outChannels;
  return meanSquare;
}

/** The graph without initializers, and the initializers as generators in graph order. */
function vggGraph(plan: VggPlan): { graph: onnx.IGraphProto; weights: GeneratedTensor[] } {
  const nodes: onnx.INodeProto[] = [];
  const weights: GeneratedTensor[] = [];
  // Each weight tensor draws from its own stream (seed, index): its values do not depend
  // on the sizes of the tensors before it.
  let stream = 0;
  const addParameters = (layer: VggLayer & { kind: 'conv' | 'linear' }, weightDims: number[], outputs: number) => {
    const random = new SeededRandom(deriveSeed(plan.options.seed, stream++));
    const std = weightStd(layer, plan);
    weights.push({ name: `${layer.module}.weight`, dims: weightDims, generate: (piece) => random.fillNormal(piece, std) });
    weights.push({ name: `${layer.module}.bias`, dims: [outputs] });
  };
  const lastModule = plan.layers[plan.layers.length - 1]!.module;
  let current = VGG_INPUT_NAME;
  for (const layer of plan.layers) {
    const output = layer.module === lastModule ? VGG_OUTPUT_NAME : layer.module;
    switch (layer.kind) {
      case 'conv': {
        const { inChannels: cin, outChannels: cout } = layer;
        addParameters(layer, [cout, cin, 3, 3], cout);
        nodes.push(
          node('Conv', [current, `${layer.module}.weight`, `${layer.module}.bias`], [output], layer.module, [
            intsAttribute('kernel_shape', [3, 3]),
            intsAttribute('pads', [1, 1, 1, 1]),
          ]),
        );
        break;
      }
      case 'relu':
        nodes.push(node('Relu', [current], [output], layer.module));
        break;
      case 'maxpool':
        nodes.push(node('MaxPool', [current], [output], layer.module, [intsAttribute('kernel_shape', [2, 2]), intsAttribute('strides', [2, 2])]));
        break;
      case 'linear': {
        if (layer.module === 'classifier.0') {
          // torch.flatten(x, 1) between features and classifier.
          nodes.push(node('Flatten', [current], ['flatten'], 'flatten', [intAttribute('axis', 1)]));
          current = 'flatten';
        }
        const { inFeatures: fin, outFeatures: fout } = layer;
        addParameters(layer, [fout, fin], fout);
        nodes.push(node('Gemm', [current, `${layer.module}.weight`, `${layer.module}.bias`], [output], layer.module, [intAttribute('transB', 1)]));
        break;
      }
    }
    current = output;
  }
  const graph = {
    name: `vgg${plan.options.depth}`,
    node: nodes,
    input: [valueInfo(VGG_INPUT_NAME, DataType.FLOAT, ['N', 3, VGG_INPUT_SIZE, VGG_INPUT_SIZE])],
    output: [valueInfo(VGG_OUTPUT_NAME, DataType.FLOAT, ['N', plan.options.numClasses])],
  };
  return { graph, weights };
}

function describe(plan: VggPlan): string {
  const { depth, widthDivisor, numClasses, seed } = plan.options;
  return (
    `VGG${depth} in torchvision's layout, widthDivisor ${widthDivisor}, ${numClasses} classes, random weights (seed ${seed}) ` +
    `from @visionq/vgg-builder. Input fixed at ${VGG_INPUT_SIZE}x${VGG_INPUT_SIZE} (AdaptiveAvgPool2d(7) is the identity there and is omitted).`
  );
}
