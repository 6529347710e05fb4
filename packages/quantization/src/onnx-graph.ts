import { endianness } from 'node:os';
import { onnx } from 'onnx-proto';

/**
 * Thin helpers over onnx-proto's generated classes: tensors stored as `raw_data`
 * (little-endian, as ONNX requires), nodes, typed graph inputs and outputs, and the
 * model wrapper. Tensors share the memory of the typed arrays they are made from; big
 * float weights can instead be generated straight into the encoded bytes.
 */

/** The opset every graph here is written for (per-axis QuantizeLinear needs 13). */
const OPSET = 13;
const IR_VERSION = 7;
const LITTLE_ENDIAN = endianness() === 'LE';

export const DataType = onnx.TensorProto.DataType;

type TypedArray = Float32Array | Int32Array | Int8Array | Uint8Array | BigInt64Array;

const ELEMENT_TYPE = new Map<Function, number>([
  [Float32Array, DataType.FLOAT],
  [Int32Array, DataType.INT32],
  [BigInt64Array, DataType.INT64],
  [Int8Array, DataType.INT8],
  [Uint8Array, DataType.UINT8],
]);

/** An initializer holding `data` with shape `dims`; `data` is not copied on little-endian hosts. */
export function tensor(name: string, dims: readonly number[], data: TypedArray): onnx.TensorProto {
  const dataType = ELEMENT_TYPE.get(data.constructor);
  if (dataType === undefined) throw new TypeError(`tensor ${name}: unsupported array type ${data.constructor.name}`);
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new RangeError(`tensor ${name}: ${data.length} values do not fill shape [${dims.join(',')}]`);
  return onnx.TensorProto.create({ name, dims: [...dims], dataType, rawData: littleEndianBytes(data) });
}

/** The values of a float initializer, whichever way it was stored (views `raw_data` when it can). */
export function floatValues(t: onnx.ITensorProto): Float32Array {
  if (t.dataType !== DataType.FLOAT) throw new TypeError(`tensor ${t.name}: expected float, got data type ${t.dataType}`);
  if (t.rawData && t.rawData.length > 0) {
    const raw = t.rawData;
    if (!LITTLE_ENDIAN) return fromLittleEndian(raw);
    // Decoded protobuf bytes are views into the model buffer, not always 4-byte aligned.
    if (raw.byteOffset % 4 === 0) return new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    return new Float32Array(new Uint8Array(raw).buffer);
  }
  return Float32Array.from(t.floatData ?? []);
}

export function dimsOf(t: onnx.ITensorProto): number[] {
  return (t.dims ?? []).map(Number);
}

export function floatAttribute(name: string, f: number): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.FLOAT, f };
}

export function intAttribute(name: string, i: number): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i };
}

export function intsAttribute(name: string, ints: readonly number[]): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: [...ints] };
}

export function node(opType: string, inputs: string[], outputs: string[], name: string, attribute: onnx.IAttributeProto[] = []): onnx.INodeProto {
  return { opType, input: inputs, output: outputs, name, attribute };
}

/** The node's name for messages: its name, else its first output. */
export function nodeLabel(n: onnx.INodeProto): string {
  return n.name || n.output?.[0] || '(unnamed)';
}

/** Attribute `name` of node `n`, if set. */
export function attributeOf(n: onnx.INodeProto, name: string): onnx.IAttributeProto | undefined {
  return n.attribute?.find((a) => a.name === name);
}

/** Integer attribute `name` of node `n`, or `fallback` when unset. */
export function intAttributeOf(n: onnx.INodeProto, name: string, fallback: number): number {
  const a = attributeOf(n, name);
  return a?.i === undefined || a.i === null ? fallback : Number(a.i);
}

/** Float attribute `name` of node `n`, or `fallback` when unset. */
export function floatAttributeOf(n: onnx.INodeProto, name: string, fallback: number): number {
  return attributeOf(n, name)?.f ?? fallback;
}

/** A graph input or output; a string dimension is symbolic (e.g. `N` for the batch). */
export function valueInfo(name: string, elemType: number, dims?: readonly (number | string)[]): onnx.IValueInfoProto {
  const shape = dims && { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) };
  return { name, type: { tensorType: { elemType, ...(shape ? { shape } : {}) } } };
}

/**
 * A float32 initializer whose values are produced straight into the encoded model, so a
 * model of hundreds of megabytes is held once, not as arrays and again as bytes.
 */
export interface GeneratedTensor {
  name: string;
  dims: readonly number[];
  /** Called with consecutive pieces of the values, in order. Absent: all zeros. */
  generate?: (piece: Float32Array) => void;
}

/** Values handed to `GeneratedTensor.generate` per call. */
const PIECE = 1 << 16;
// Wire-format tags (field number << 3 | 2 for length-delimited fields).
const MODEL_GRAPH_TAG = (7 << 3) | 2;
const GRAPH_INITIALIZER_TAG = (5 << 3) | 2;
const TENSOR_RAW_DATA_TAG = (9 << 3) | 2;

/**
 * Serialises a graph as a model of opset `OPSET`. `generated` initializers are appended
 * to the graph's own: protobufjs encodes everything but their values, which are written
 * into the one output buffer piece by piece (protobuf lets fields come in any order).
 */
export function encodeModel(graph: onnx.IGraphProto, docString: string, generated: readonly GeneratedTensor[] = []): Uint8Array {
  const modelHead = onnx.ModelProto.encode({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'visionq',
    producerVersion: '0.1.0',
    docString,
  }).finish();
  const graphHead = onnx.GraphProto.encode(graph).finish();
  const tensors = generated.map((t) => {
    const head = onnx.TensorProto.encode({ name: t.name, dims: [...t.dims], dataType: DataType.FLOAT }).finish();
    const rawLength = t.dims.reduce((a, b) => a * b, 1) * 4;
    const length = head.length + 1 + varintLength(rawLength) + rawLength;
    return { tensor: t, head, rawLength, length };
  });
  const graphLength = graphHead.length + tensors.reduce((sum, t) => sum + 1 + varintLength(t.length) + t.length, 0);

  // Zero-filled, so all-zero tensors cost nothing to write.
  const out = new Uint8Array(modelHead.length + 1 + varintLength(graphLength) + graphLength);
  out.set(modelHead, 0);
  let pos = modelHead.length;
  out[pos++] = MODEL_GRAPH_TAG;
  pos = writeVarint(out, pos, graphLength);
  out.set(graphHead, pos);
  pos += graphHead.length;
  const piece = new Float32Array(PIECE);
  for (const { tensor: t, head, rawLength, length } of tensors) {
    out[pos++] = GRAPH_INITIALIZER_TAG;
    pos = writeVarint(out, pos, length);
    out.set(head, pos);
    pos += head.length;
    out[pos++] = TENSOR_RAW_DATA_TAG;
    pos = writeVarint(out, pos, rawLength);
    for (let done = 0; done < rawLength; done += PIECE * 4) {
      const values = piece.subarray(0, Math.min(PIECE, (rawLength - done) / 4));
      if (t.generate) {
        t.generate(values);
        out.set(littleEndianBytes(values), pos + done);
      }
    }
    pos += rawLength;
  }
  if (pos !== out.length) throw new Error(`internal: encoded ${pos} bytes of ${out.length}`);
  return out;
}

export function decodeModel(bytes: Uint8Array): onnx.ModelProto {
  return onnx.ModelProto.decode(bytes);
}

function varintLength(value: number): number {
  let length = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    length++;
  }
  return length;
}

function writeVarint(out: Uint8Array, pos: number, value: number): number {
  while (value >= 128) {
    out[pos++] = (value % 128) | 128;
    value = Math.floor(value / 128);
  }
  out[pos++] = value;
  return pos;
}

function littleEndianBytes(data: TypedArray): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (LITTLE_ENDIAN || data.BYTES_PER_ELEMENT === 1) return bytes;
  const swapped = new Uint8Array(bytes.length);
  const width = data.BYTES_PER_ELEMENT;
  for (let i = 0; i < bytes.length; i += width) for (let j = 0; j < width; j++) swapped[i + j] = bytes[i + width - 1 - j]!;
  return swapped;
}

function fromLittleEndian(raw: Uint8Array): Float32Array {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Float32Array(raw.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}
