import { ModelError } from '@visionq/api';
import type { ModelManifest } from '@visionq/models';
import type { TensorInfo } from './session-protocol';

/** What the graph itself says about serving, once checked against the manifest. */
export interface GraphFacts {
  /** The graph's fixed batch size, or undefined when the batch axis is dynamic. */
  fixedBatchSize?: number;
}

/**
 * Checks the manifest against the ONNX graph's real inputs and outputs. A mismatch is a
 * ModelError naming the model and the manifest field. Symbolic dimensions pass; the
 * class count of a symbolic output is checked on the first run.
 */
export function checkGraph(manifest: ModelManifest, labelCount: number, inputs: TensorInfo[], outputs: TensorInfo[]): GraphFacts {
  const fail = (field: string, message: string): never => {
    throw new ModelError(`model "${manifest.name}": ${field}: ${message}`, [{ field, message }]);
  };
  const input = inputs.find((i) => i.name === manifest.input.name);
  if (!input) fail('input.name', `"${manifest.input.name}" is not an input of model.onnx (inputs: ${inputs.map((i) => i.name).join(', ')})`);
  if (inputs.length !== 1) fail('input.name', `model.onnx has ${inputs.length} inputs; visionq feeds exactly one`);
  if (input!.type !== 'float32') fail('input.name', `input "${input!.name}" is ${input!.type}, expected float32`);
  const shape = input!.shape;
  const { layout } = manifest.input;
  if (shape.length !== 4) fail('input.layout', `input "${input!.name}" has rank ${shape.length}, expected 4 (${layout})`);
  const [channelAxis, heightAxis, widthAxis] = layout === 'NHWC' ? [3, 1, 2] : [1, 2, 3];
  const expected: Array<[number, string, number]> = [
    [channelAxis, 'input.channels', manifest.input.channels],
    [heightAxis, 'input.height', manifest.input.height],
    [widthAxis, 'input.width', manifest.input.width],
  ];
  for (const [axis, field, value] of expected) {
    const dim = shape[axis];
    if (typeof dim === 'number' && dim !== value) fail(field, `manifest says ${value} but the graph's input "${input!.name}" has ${dim} on axis ${axis}`);
  }
  const output = outputs.find((o) => o.name === manifest.output.name);
  if (!output) fail('output.name', `"${manifest.output.name}" is not an output of model.onnx (outputs: ${outputs.map((o) => o.name).join(', ')})`);
  if (output!.type !== 'float32') fail('output.name', `output "${output!.name}" is ${output!.type}, expected float32`);
  if (output!.shape.length !== 2) fail('output.name', `output "${output!.name}" has rank ${output!.shape.length}, expected 2 ([N, classes])`);
  const classes = output!.shape[1];
  if (typeof classes === 'number' && classes !== labelCount) fail('labels', `${manifest.labels} has ${labelCount} labels but the graph's output has ${classes} classes`);
  const batch = shape[0];
  return typeof batch === 'number' ? { fixedBatchSize: batch } : {};
}
