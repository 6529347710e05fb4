#!/usr/bin/python3
"""Reference logits for @visionq/vgg-builder, computed by PyTorch.

The builder (TypeScript) writes a small VGG as ONNX; this script reads its initializers
with the `onnx` package, loads them into the equivalent torchvision module, runs a fixed
input that both sides regenerate from a recipe, and writes the logits to
test/fixtures/vgg-reference/. test/unit/vgg-builder.test.ts then checks that
onnxruntime-node on the builder's model gives the same numbers.

    /usr/bin/python3 tools/vgg-reference/make_reference.py           # rewrite the fixture
    /usr/bin/python3 tools/vgg-reference/make_reference.py --vgg16   # also check full VGG16

Needs torch, torchvision and onnx (Debian: python3-torch, python3-torchvision,
python3-onnx) and node with the repository's node_modules (npx tsx).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import torch
import torchvision
from onnx import numpy_helper
from torch import nn
from torchvision.models.vgg import VGG, cfgs, make_layers

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
FIXTURE = os.path.join(ROOT, 'test', 'fixtures', 'vgg-reference', 'vgg11-w16-c10-s1.json')
SMALL = {'depth': 11, 'widthDivisor': 16, 'numClasses': 10, 'seed': 1}
CFG_OF_DEPTH = {11: 'A', 13: 'B', 16: 'D', 19: 'E'}
BATCH = 2

# Node side: build the model with the TypeScript builder and, given an input file, run it
# in onnxruntime-node, so the full-size check compares the two runtimes on one input.
NODE_SCRIPT = r"""
const fs = require('node:fs');
const ort = require('onnxruntime-node');
const { buildVgg } = require('./packages/vgg-builder/src/index.ts');
const [options, modelPath, inputPath, outputPath] = process.argv.slice(-4);
const bytes = buildVgg(JSON.parse(options));
fs.writeFileSync(modelPath, bytes);
(async () => {
  const buf = fs.readFileSync(inputPath);
  const input = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const session = await ort.InferenceSession.create(bytes);
  const n = input.length / (3 * 224 * 224);
  const { logits } = await session.run({ input: new ort.Tensor('float32', input, [n, 3, 224, 224]) });
  fs.writeFileSync(outputPath, Buffer.from(logits.data.buffer, logits.data.byteOffset, logits.data.byteLength));
})();
"""


def recipe_input(shape):
    """The input recipe, also written into the fixture for the TypeScript test.

    Value i (flat NCHW index) is murmur3's fmix32 of i (uint32 arithmetic), mapped to
    [-2, 2): float32(fmix32(i) / 2**32 * 4 - 2), the division and affine map in doubles.
    """
    x = np.arange(int(np.prod(shape)), dtype=np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x85EBCA6B)
    x ^= x >> np.uint32(13)
    x *= np.uint32(0xC2B2AE35)
    x ^= x >> np.uint32(16)
    return (x.astype(np.float64) / 2**32 * 4 - 2).astype(np.float32).reshape(shape)


def torch_vgg(depth, width_divisor, num_classes):
    """torchvision's VGG for divisor 1; for others the same modules with narrower widths."""
    if width_divisor == 1:
        return getattr(torchvision.models, f'vgg{depth}')(weights=None, num_classes=num_classes)
    cfg = [v if v == 'M' else v // width_divisor for v in cfgs[CFG_OF_DEPTH[depth]]]
    model = VGG(make_layers(cfg), num_classes=num_classes, init_weights=False)
    hidden = 4096 // width_divisor
    model.classifier = nn.Sequential(
        nn.Linear(cfg[-2] * 7 * 7, hidden), nn.ReLU(True), nn.Dropout(),
        nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(),
        nn.Linear(hidden, num_classes),
    )
    return model


def run_builder(options, workdir, x):
    """Builder's model (written to workdir) and onnxruntime-node's logits for input x."""
    paths = [os.path.join(workdir, f) for f in ('model.onnx', 'input.bin', 'logits.bin')]
    x.astype('<f4').tofile(paths[1])
    subprocess.run(['npx', 'tsx', '-e', NODE_SCRIPT, json.dumps(options), *paths], cwd=ROOT, check=True)
    return paths[0], np.fromfile(paths[2], dtype='<f4').reshape(x.shape[0], -1)


def torch_logits(options, model_path, x, dtype):
    model = torch_vgg(options['depth'], options['widthDivisor'], options['numClasses'])
    graph = onnx.load(model_path).graph
    state = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in graph.initializer}
    model.load_state_dict(state, strict=True)  # same names, same shapes, nothing left over
    model.eval().to(dtype)
    with torch.no_grad():
        return model(torch.from_numpy(x).to(dtype)).numpy()


def compare(name, expected, actual):
    diff = np.abs(expected.astype(np.float64) - actual).max()
    scale = np.abs(expected).max()
    print(f'{name}: max |diff| {diff:.3g}, max |logit| {scale:.3g}, relative {diff / scale:.3g}')
    return diff / scale


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--vgg16', action='store_true', help='also compare full-size VGG16 (about 2 GB of memory, a minute)')
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory() as workdir:
        x = recipe_input((BATCH, 3, 224, 224))
        model_path, ort_logits = run_builder(SMALL, workdir, x)
        reference = torch_logits(SMALL, model_path, x, torch.float64)
        compare('small: torch float32 vs float64', reference, torch_logits(SMALL, model_path, x, torch.float32))
        compare('small: onnxruntime-node vs torch float64', reference, ort_logits)
        fixture = {
            'description': 'Logits of the builder\'s model computed by PyTorch (float64) with the builder\'s weights; '
                           'written by tools/vgg-reference/make_reference.py.',
            'builder_options': SMALL,
            'input': {
                'shape': [BATCH, 3, 224, 224],
                'recipe': 'value i (flat NCHW index) = float32(fmix32(i) / 2**32 * 4 - 2): fmix32 is murmur3\'s '
                          'finaliser on uint32 (x ^= x >>> 16; x *= 0x85ebca6b; x ^= x >>> 13; x *= 0xc2b2ae35; '
                          'x ^= x >>> 16), the division and affine map in doubles',
            },
            'torch': torch.__version__,
            'torchvision': torchvision.__version__,
            'logits': [[float(v) for v in row] for row in reference],
        }
        with open(FIXTURE, 'w') as f:
            json.dump(fixture, f, indent=2)
            f.write('\n')
        print(f'wrote {os.path.relpath(FIXTURE, ROOT)}')

        if args.vgg16:
            options = {'depth': 16, 'widthDivisor': 1, 'numClasses': 1000, 'seed': 0}
            x = recipe_input((1, 3, 224, 224))
            model_path, ort_logits = run_builder(options, workdir, x)
            full = torch_logits(options, model_path, x, torch.float32)
            compare('vgg16: onnxruntime-node vs torchvision.models.vgg16 float32', full, ort_logits)


if __name__ == '__main__':
    sys.exit(main())
