#!/usr/bin/env python3
"""Train visionq's default model: a compact VGG-style classifier for Fashion-MNIST.

Writes, under --out-dir, the model.onnx / manifest.json / labels.txt that the service
loads, and under --sample-dir a small set of real test images with the predictions the
trained network makes on them, which the service's tests compare against.

The service feeds every model a [N,3,224,224] tensor made like torchvision's
convert('RGB') -> Resize((224,224)) -> ToTensor() -> Normalize(ImageNet mean/std).
Training sees exactly those numbers: every image goes through PIL's bilinear resize (the
same call torchvision's Resize makes on a PIL image), so the uint8 rounding PIL does is
learnt too. The network opens with AvgPool2d(8), which turns 224x224 back into 28x28;
since that pooling (and the per-channel normalisation, which is affine) has no
parameters, the script pools each resized image once up front and trains the rest of
the network on the pooled 28x28 tensors. That is the same function as feeding the full
224x224 tensors, at a fraction of the memory and time. The final test-set accuracy is
measured the expensive way, through the real torchvision transforms and the full model.

Run with Debian's Python (torch 1.13, torchvision 0.14, onnx 1.12):
    /usr/bin/python3 tools/train/train_fashion_vgg.py
"""

import argparse
import gzip
import json
import math
import os
import time

import numpy as np
import onnx
from onnx import numpy_helper
import torch
import torch.nn.functional as F
import torchvision.transforms as T
from PIL import Image
from torch import nn

LABELS = [
    'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
    'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
]
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
SIZE = 224
# 224 / 28: the pool undoes the service's upsampling, so the convolutions see the
# original resolution and cost what a 28x28 network costs.
POOL = 8
OPSET = 13


def parse_args():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data-dir', default='/usr/share/datasets/fashion-mnist',
                   help='folder with the four raw *-ubyte.gz files')
    p.add_argument('--out-dir', default=os.path.join(root, 'models', 'fashion-vgg'))
    p.add_argument('--sample-dir', default=os.path.join(root, 'test', 'fixtures', 'fashion-mnist'))
    p.add_argument('--sample-count', type=int, default=200,
                   help='the first N images of the t10k split go into the sample')
    p.add_argument('--epochs', type=int, default=4)
    p.add_argument('--batch-size', type=int, default=128)
    p.add_argument('--lr', type=float, default=3e-3, help='peak of the one-cycle schedule')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=2)
    return p.parse_args()


def read_idx(path):
    """Raw idx file -> numpy array (big-endian header: magic, then one u32 per dim)."""
    with gzip.open(path, 'rb') as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], 'big')
    if magic >> 8 != 0x08:  # 0x08 = unsigned byte, the only type Fashion-MNIST uses
        raise ValueError(f'{path}: not an unsigned-byte idx file (magic {magic:#x})')
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(data_dir, split):
    images = read_idx(os.path.join(data_dir, f'{split}-images-idx3-ubyte.gz'))
    labels = read_idx(os.path.join(data_dir, f'{split}-labels-idx1-ubyte.gz'))
    if len(images) != len(labels):
        raise ValueError(f'{split}: {len(images)} images but {len(labels)} labels')
    return images, labels.astype(np.int64)


def pooled_resized(images):
    """What AvgPool2d(8) sees after the service's preprocessing, per image, as grey 0..255.

    Resizing the 'L' image equals resizing its RGB copy channel by channel (checked: PIL
    gives bit-identical planes), and Normalize is applied afterwards in normalise().
    """
    out = np.empty((len(images), SIZE // POOL, SIZE // POOL), dtype=np.float32)
    for i, img in enumerate(images):
        big = np.asarray(Image.fromarray(img, 'L').resize((SIZE, SIZE), Image.BILINEAR),
                         dtype=np.float32)
        out[i] = big.reshape(SIZE // POOL, POOL, SIZE // POOL, POOL).mean(axis=(1, 3))
    return torch.from_numpy(out)


def normalise(grey):
    """[N,H,W] grey 0..255 -> [N,3,H,W] as ToTensor + Normalize would make it."""
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (grey.unsqueeze(1) / 255.0 - mean) / std


class FashionVGG(nn.Module):
    """AvgPool2d(8) -> [32,32,M,64,64,M] 3x3 conv blocks -> FC 256 -> 10 logits.

    BatchNorm makes a handful of epochs enough; the ONNX export folds it into the
    convolutions, so the served graph is plain VGG.
    """

    def __init__(self, num_classes=len(LABELS)):
        super().__init__()
        self.downsample = nn.AvgPool2d(POOL)

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                    nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *block(3, 32), *block(32, 32), nn.MaxPool2d(2),
            *block(32, 64), *block(64, 64), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, 256), nn.ReLU(inplace=True), nn.Dropout(0.3),
            nn.Linear(256, num_classes),
        )

    def head(self, pooled):
        """Everything after the pool; training calls this on pre-pooled tensors."""
        return self.classifier(self.features(pooled))

    def forward(self, x):
        return self.head(self.downsample(x))


def train(model, x, y, args):
    gen = torch.Generator().manual_seed(args.seed)
    steps_per_epoch = math.ceil(len(x) / args.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch)
    for epoch in range(args.epochs):
        model.train()
        started = time.time()
        order = torch.randperm(len(x), generator=gen)
        total_loss, correct = 0.0, 0
        for start in range(0, len(x), args.batch_size):
            idx = order[start:start + args.batch_size]
            xb, yb = x[idx], y[idx]
            # Mirroring commutes with resize, pool and normalise, so flipping the pooled
            # tensor is the same as flipping the photo; clothes are left-right symmetric
            # enough for that to be a fair augmentation.
            flip = torch.rand(len(idx), generator=gen) < 0.5
            xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(3), xb)
            logits = model.head(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total_loss += loss.item() * len(idx)
            correct += (logits.argmax(1) == yb).sum().item()
        print(f'epoch {epoch + 1}/{args.epochs}: loss {total_loss / len(x):.4f} '
              f'train acc {correct / len(x):.4f} ({time.time() - started:.0f}s)', flush=True)


def serving_transform():
    """The preprocessing the service mimics, from a decoded PIL image."""
    return T.Compose([
        T.Resize((SIZE, SIZE), interpolation=T.InterpolationMode.BILINEAR),
        T.ToTensor(),
        T.Normalize(MEAN, STD),
    ])


@torch.no_grad()
def predict_pil(model, pil_images, batch_size=200):
    """Softmax probabilities of the full model on PIL images, via torchvision."""
    model.eval()
    tf = serving_transform()
    probs = []
    for start in range(0, len(pil_images), batch_size):
        batch = torch.stack([tf(im.convert('RGB')) for im in pil_images[start:start + batch_size]])
        probs.append(F.softmax(model(batch), dim=1))
    return torch.cat(probs)


def export_onnx(model, path):
    model.eval()
    dummy = torch.zeros(1, 3, SIZE, SIZE)
    torch.onnx.export(
        model, dummy, path,
        input_names=['input'], output_names=['logits'],
        dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}},
        opset_version=OPSET, do_constant_folding=True,
    )
    graph = drop_noop_pads(onnx.load(path))
    onnx.checker.check_model(graph)
    onnx.save(graph, path)


def drop_noop_pads(model):
    """Remove the all-zero Pad torch 1.13 puts before AvgPool2d.

    It changes nothing but copies the whole [N,3,224,224] input on every run.
    """
    g = model.graph
    consts = {n.output[0]: n for n in g.node if n.op_type == 'Constant'}
    for pad in [n for n in g.node if n.op_type == 'Pad']:
        src = consts.get(pad.input[1]) if len(pad.input) > 1 else None
        if src is None or numpy_helper.to_array(src.attribute[0].t).any():
            continue
        for n in g.node:
            n.input[:] = [pad.input[0] if i == pad.output[0] else i for i in n.input]
        g.node.remove(pad)
        if not any(src.output[0] in n.input for n in g.node):
            g.node.remove(src)
    return model


def slug(label):
    return ''.join(c if c.isalnum() else '_' for c in label.lower())


def write_model_dir(out_dir, accuracy):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, 'labels.txt'), 'w') as f:
        f.write('\n'.join(LABELS) + '\n')
    manifest = {
        'name': 'fashion-vgg',
        'version': '1',
        'description': 'Compact VGG-style network trained on Fashion-MNIST (10 classes) with '
                       f'tools/train/train_fashion_vgg.py; test accuracy {accuracy * 100:.1f}%.',
        'input': {'name': 'input', 'layout': 'NCHW', 'height': SIZE, 'width': SIZE, 'channels': 3},
        'output': {'name': 'logits', 'activation': 'softmax'},
        'preprocess': {'resize_mode': 'direct', 'mean': MEAN, 'std': STD, 'scale': 255,
                       'channel_order': 'RGB'},
        'labels': 'labels.txt',
    }
    with open(os.path.join(out_dir, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=2)
        f.write('\n')


def write_sample(model, images, labels, sample_dir, count):
    """PNG files first, then predictions read back from those files, as the service will."""
    os.makedirs(sample_dir, exist_ok=True)
    files = []
    for i in range(count):
        name = f'{i:04d}-{slug(LABELS[labels[i]])}.png'
        Image.fromarray(images[i], 'L').save(os.path.join(sample_dir, name))
        files.append(name)
    pil = []
    for name in files:
        with Image.open(os.path.join(sample_dir, name)) as im:
            pil.append(im.copy())
    probs = predict_pil(model, pil)
    top_p, pred = probs.max(1)
    entries = [
        {'file': name, 'label': int(labels[i]), 'predicted': int(pred[i]),
         'top1_probability': round(float(top_p[i]), 6)}
        for i, name in enumerate(files)
    ]
    accuracy = sum(e['label'] == e['predicted'] for e in entries) / count
    expected = {
        'source': f'Fashion-MNIST t10k (test split), the first {count} images in file order, '
                  '28x28 greyscale; predictions of models/fashion-vgg via PIL + torchvision '
                  'Resize((224,224)), ToTensor, Normalize',
        'count': count,
        'accuracy': accuracy,
        'images': entries,
    }
    with open(os.path.join(sample_dir, 'expected.json'), 'w') as f:
        json.dump(expected, f, indent=2)
        f.write('\n')
    return accuracy


def main():
    args = parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    train_images, train_labels = load_split(args.data_dir, 'train')
    test_images, test_labels = load_split(args.data_dir, 't10k')
    print(f'train {train_images.shape}, test {test_images.shape}', flush=True)

    started = time.time()
    x_train = normalise(pooled_resized(train_images))
    y_train = torch.from_numpy(train_labels)
    print(f'preprocessed the training set in {time.time() - started:.0f}s', flush=True)

    model = FashionVGG()
    started = time.time()
    train(model, x_train, y_train, args)
    train_seconds = time.time() - started
    print(f'training took {train_seconds:.0f}s', flush=True)

    started = time.time()
    test_pil = [Image.fromarray(img, 'L') for img in test_images]
    test_pred = predict_pil(model, test_pil).argmax(1).numpy()
    accuracy = float((test_pred == test_labels).mean())
    print(f'test accuracy {accuracy:.4f} on {len(test_labels)} images via the serving '
          f'transforms ({time.time() - started:.0f}s)', flush=True)

    os.makedirs(args.out_dir, exist_ok=True)
    onnx_path = os.path.join(args.out_dir, 'model.onnx')
    export_onnx(model, onnx_path)
    write_model_dir(args.out_dir, accuracy)
    print(f'wrote {args.out_dir} (model.onnx {os.path.getsize(onnx_path) / 1e6:.2f} MB)')

    sample_accuracy = write_sample(model, test_images, test_labels, args.sample_dir,
                                   args.sample_count)
    print(f'wrote {args.sample_count} sample images to {args.sample_dir}; '
          f'sample accuracy {sample_accuracy:.4f}')


if __name__ == '__main__':
    main()
