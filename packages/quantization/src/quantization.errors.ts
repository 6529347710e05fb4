import type { onnx } from 'onnx-proto';
import { nodeLabel } from './onnx-graph';

/**
 * A node the quantizer cannot quantize. Raised while planning, before calibration runs
 * or anything is written; the message names the node and its op
 * (`cannot quantize node "x" (op LSTM)`), and why when the op itself is supported.
 */
export class QuantizationError extends TypeError {
  readonly node: string;
  readonly op: string;

  constructor(n: onnx.INodeProto, reason?: string) {
    const node = nodeLabel(n);
    super(`cannot quantize node "${node}" (op ${n.opType})${reason ? `: ${reason}` : ''}`);
    this.name = 'QuantizationError';
    this.node = node;
    this.op = n.opType ?? '';
  }
}
