export { assertQuantizable, quantizeClassifier, type QuantizeClassifierOptions } from './qdq-quantizer';
export { QuantizationError } from './quantization.errors';
export { SUPPORTED_OPS } from './quantization-plan';
export { calibrateRanges, type TensorRange } from './activation-calibrator';
export {
  attributeOf,
  DataType,
  decodeModel,
  dimsOf,
  encodeModel,
  floatAttribute,
  floatValues,
  intAttribute,
  intsAttribute,
  node,
  tensor,
  valueInfo,
  type GeneratedTensor,
} from './onnx-graph';
export { compareClassifiers, cosineSimilarity, type CompareOptions, type QuantizationReport } from './quantization-report';
