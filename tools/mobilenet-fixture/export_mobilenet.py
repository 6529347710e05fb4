#!/usr/bin/python3
"""A small torchvision MobileNetV2 exported to ONNX as a servable model folder.

The INT8 quantizer's tests need a classifier it did not build, exported the way users
export theirs: torchvision's MobileNetV2 (width 0.5, its first four stages, 10 classes,
64x64 input) with
seeded random weights and random BatchNorm statistics (so folding BatchNorm into the
convolutions changes numbers and a wrong fold shows), exported by torch.onnx without
constant folding or its eval-mode BatchNorm fusion, so the graph keeps its BatchNormalization nodes, ReLU6 as Clip with
constant bounds, the residual Adds, GlobalAveragePool, Flatten and the Gemm head.

    /usr/bin/python3 tools/mobilenet-fixture/export_mobilenet.py   # rewrites test/fixtures/mobilenet-v2/

Needs Debian's python3-torch and python3-torchvision (torch 1.13, torchvision 0.14 when
written). The weights are random: the model's predictions mean nothing; only how the INT8
model agrees with it does.
"""
import json
import os

import torch
import torchvision
from torchvision.models.mobilenetv2 import InvertedResidual

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'mobilenet-v2')
SIZE = 64
CLASSES = 10
# torchvision's first four stages (t, c, n, s) with two blocks at most: six inverted
# residuals, three of them with a residual Add.
SETTING = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 2, 2], [6, 64, 2, 2]]


def fixture_images():
    """The Fashion-MNIST fixture images as the model folder's manifest preprocesses them (near enough)."""
    from PIL import Image

    folder = os.path.join(ROOT, 'test', 'fixtures', 'fashion-mnist')
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    images = []
    for name in sorted(f for f in os.listdir(folder) if f.endswith('.png')):
        image = Image.open(os.path.join(folder, name)).convert('RGB').resize((SIZE, SIZE), Image.BILINEAR)
        pixels = torch.tensor(list(image.getdata()), dtype=torch.float32).view(SIZE, SIZE, 3).permute(2, 0, 1) / 255
        images.append((pixels - mean) / std)
    return torch.stack(images)


def main():
    """Random weights whose outputs behave like a trained model's.

    With random BatchNorm statistics the pooled features hardly depend on the image (every
    image gets the same top-1, and agreement would mean nothing). So the statistics are
    those of the fixture images, as training would leave them (one pass in train mode with
    a cumulative average), after random BatchNorm scales and shifts are drawn, which the
    fold into the convolutions must carry. The head is random, scaled and centred on those
    images for logits of deviation about 2 from image to image.

    A random network with BatchNorm at initialisation is chaotic: a perturbation of cosine
    0.9998 early on leaves torchvision's full MobileNetV2 (17 blocks) at cosine 0.8 at the
    end, so no 8-bit model of it can agree with it, whatever the quantizer. Trained networks
    are not like that. Hence few blocks, and residual branches scaled down (BatchNorm scale
    × 0.2, as zero-init-residual training starts): the same perturbation ends at 0.996.
    """
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(width_mult=0.5, num_classes=CLASSES, inverted_residual_setting=SETTING)
    images = fixture_images()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
                m.momentum = None
                m.reset_running_stats()
        for block in model.features:
            if isinstance(block, InvertedResidual) and block.use_res_connect:
                block.conv[-1].weight.mul_(0.2)
        model.train()
        model.features(images)
        model.eval()
        features = torch.flatten(torch.nn.functional.adaptive_avg_pool2d(model.features(images), 1), 1)
        weight = torch.randn(CLASSES, features.shape[1])
        centred = (features - features.mean(0)) @ weight.T
        weight *= 2 / centred.std().item()
        linear = model.classifier[1]
        linear.weight.copy_(weight)
        linear.bias.copy_(-(weight @ features.mean(0)))
    os.makedirs(OUT, exist_ok=True)
    torch.onnx.export(
        model,
        torch.randn(1, 3, SIZE, SIZE),
        os.path.join(OUT, 'model.onnx'),
        opset_version=13,
        do_constant_folding=False,
        # PRESERVE on a model in eval mode: eval behaviour, without the eval-only pass that fuses BatchNorm into Conv.
        training=torch.onnx.TrainingMode.PRESERVE,
        input_names=['input'],
        output_names=['logits'],
        dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}},
    )
    manifest = {
        'name': 'mobilenet-v2-tiny',
        'version': '1',
        'description': 'torchvision MobileNetV2 (width 0.5, first four stages, 10 classes, 64x64) with seeded random weights and BatchNorm statistics, '
        'exported by tools/mobilenet-fixture/export_mobilenet.py; a test fixture, its predictions mean nothing.',
        'input': {'name': 'input', 'layout': 'NCHW', 'height': SIZE, 'width': SIZE, 'channels': 3},
        'output': {'name': 'logits', 'activation': 'softmax'},
        'preprocess': {'resize_mode': 'direct', 'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225], 'scale': 255, 'channel_order': 'RGB'},
        'labels': 'labels.txt',
    }
    with open(os.path.join(OUT, 'manifest.json'), 'w') as f:
        f.write(json.dumps(manifest, indent=2) + '\n')
    with open(os.path.join(OUT, 'labels.txt'), 'w') as f:
        f.write(''.join(f'class_{i}\n' for i in range(CLASSES)))
    print(f'wrote {OUT}: {os.path.getsize(os.path.join(OUT, "model.onnx"))} bytes')


if __name__ == '__main__':
    main()
