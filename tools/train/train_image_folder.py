#!/usr/bin/env python3
"""Train a VGG classifier on a folder of labelled photos and export it for visionq.

Run by `npx visionq train` (which stages the folder, checks the export against visionq's own
preprocessing and onnxruntime, and renames it into place); it can also run alone:

    /usr/bin/python3 tools/train/train_image_folder.py --data DIR --out STAGING_DIR \
        --name NAME --version 1

DIR is torchvision's ImageFolder layout, DIR/<class>/<image>, split here into training and
validation (stratified, seeded), or DIR/train/<class>/... and DIR/val/<class>/....

Writes into --out: model.onnx (input `input` [N,3,S,S], output `logits`, N dynamic),
manifest.json (the validation preprocessing, which visionq reproduces byte for byte),
labels.txt, metrics.json (accuracy, per-class precision/recall, confusion matrix, Cohen's
kappa on the validation split), confusion.png, and validation.json (PyTorch's top-1 for each
validation image, which the parity check compares with visionq's).

Progress is one JSON object per line on stdout ({"event": "epoch", ...}); errors are one line
on stderr and exit status 2 (bad input) or 1.
"""

import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError
from torch import nn

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
OPSET = 13
# Debian's fonts-dejavu-core when present; Pillow's built-in bitmap font (Latin-1 only) otherwise.
FONT = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf'
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.webp', '.bmp', '.tif', '.tiff', '.gif')
# torchvision's configurations: numbers are conv widths, 'M' a 2x2 max pool.
CONFIGS = {
    'vgg11': [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
    'vgg13': [64, 64, 'M', 128, 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
    'vgg16': [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'],
    'vgg19': [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512, 512, 512, 512, 'M'],
}
ARCHS = [a for base in CONFIGS for a in (base, base + '_bn')]


class UsageError(Exception):
    """Bad input: reported as one line, exit status 2."""


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', required=True, help='DIR/<class>/*.jpg, or DIR/train + DIR/val')
    p.add_argument('--out', required=True, help='folder to write (created; must not exist)')
    p.add_argument('--name', required=True, help="the model's name in manifest.json")
    p.add_argument('--version', default='1')
    p.add_argument('--arch', choices=ARCHS, default='vgg16_bn')
    p.add_argument('--width-divisor', type=int, default=1, help='divides every layer width (1 = torchvision\'s network)')
    p.add_argument('--epochs', type=int, default=30)
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--image-size', type=int, default=224, help='training crop and served input; a multiple of 32')
    p.add_argument('--weights', help="a torchvision state_dict (.pth) to start from; its last layer is replaced")
    p.add_argument('--lr', type=float, default=0.01, help='SGD learning rate, annealed to 0 (cosine)')
    p.add_argument('--momentum', type=float, default=0.9)
    p.add_argument('--weight-decay', type=float, default=5e-4)
    p.add_argument('--flip', type=float, default=0.5, help='probability of a horizontal flip')
    p.add_argument('--jitter', type=float, default=0.2, help='colour jitter of brightness, contrast and saturation (±)')
    p.add_argument('--val-fraction', type=float, default=0.2, help='share of each class held out when DIR has no val split')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=0, help='torch CPU threads (0 = one per CPU)')
    p.add_argument('--device', choices=['auto', 'cpu', 'cuda'], default='auto')
    args = p.parse_args(argv)
    if args.image_size < 32 or args.image_size % 32:
        raise UsageError(f'--image-size {args.image_size}: a multiple of 32 (VGG halves it five times)')
    for flag in ('width_divisor', 'epochs', 'batch_size'):
        if getattr(args, flag) < 1:
            raise UsageError(f'--{flag.replace("_", "-")} must be at least 1')
    if not 0 < args.val_fraction < 1:
        raise UsageError('--val-fraction must be between 0 and 1')
    return args


def emit(event, **fields):
    print(json.dumps({'event': event, **fields}), flush=True)


# ---------------------------------------------------------------- data

def list_classes(root):
    if not os.path.isdir(root):
        raise UsageError(f'--data {root} is not a folder')
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith('.'))
    if len(classes) < 2:
        raise UsageError(f'{root} holds {len(classes)} class folder(s); a classifier needs at least 2 (DIR/<class>/<image>)')
    samples = {}
    for c in classes:
        folder = os.path.join(root, c)
        files = sorted(
            os.path.join(dirpath, f)
            for dirpath, _, names in os.walk(folder)
            for f in names
            if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith('.')
        )
        if not files:
            raise UsageError(f'class "{c}" ({folder}) has no images ({", ".join(IMAGE_EXTENSIONS)})')
        samples[c] = files
    # Refused before training rather than skipped: a silently smaller class skews the metrics, and
    # a bad file met in epoch 7 wastes six. Opening reads only the header, so this pass is cheap;
    # a file whose pixels are damaged past its header still fails when first decoded, named.
    unreadable = [f for files in samples.values() for f in files if not readable(f)]
    if unreadable:
        shown = ', '.join(unreadable[:5]) + (f' and {len(unreadable) - 5} more' if len(unreadable) > 5 else '')
        raise UsageError(f'{len(unreadable)} file(s) are not images Pillow can read: {shown} (remove or replace them)')
    return classes, samples


def readable(path):
    try:
        with Image.open(path):
            return True
    except (UnidentifiedImageError, OSError):
        return False


def read_splits(data, val_fraction, seed):
    """(classes, train [(path, label)], val [(path, label)]), as torchvision's ImageFolder orders classes."""
    train_dir, val_dir = os.path.join(data, 'train'), os.path.join(data, 'val')
    if os.path.isdir(train_dir) and os.path.isdir(val_dir):
        classes, train = list_classes(train_dir)
        val_classes, val = list_classes(val_dir)
        if val_classes != classes:
            raise UsageError(f'{train_dir} and {val_dir} name different classes: {classes} and {val_classes}')
        return classes, [(f, i) for i, c in enumerate(classes) for f in train[c]], [(f, i) for i, c in enumerate(classes) for f in val[c]]
    classes, samples = list_classes(data)
    rng = random.Random(seed)
    train, val = [], []
    for i, c in enumerate(classes):
        files = list(samples[c])
        if len(files) < 2:
            raise UsageError(f'class "{c}" has {len(files)} image; at least 2 are needed to hold one out for validation')
        rng.shuffle(files)
        held = max(1, round(len(files) * val_fraction))
        val += [(f, i) for f in sorted(files[:held])]
        train += [(f, i) for f in sorted(files[held:])]
    return classes, train, val


def load_rgb(path):
    """As visionq decodes: EXIF orientation applied, then RGB."""
    try:
        with Image.open(path) as img:
            return ImageOps.exif_transpose(img).convert('RGB')
    except (UnidentifiedImageError, OSError) as err:
        raise UsageError(f'{path}: not an image Pillow can read ({err})')


class Images(torch.utils.data.Dataset):
    def __init__(self, samples, transform):
        self.samples, self.transform = samples, transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        path, label = self.samples[i]
        return self.transform(load_rgb(path)), label


def eval_resize(image_size):
    return round(image_size * 256 / 224)


def transforms(args):
    normalize = T.Normalize(MEAN, STD)
    train = T.Compose([
        T.RandomResizedCrop(args.image_size),
        T.RandomHorizontalFlip(args.flip),
        T.ColorJitter(args.jitter, args.jitter, args.jitter),
        T.ToTensor(),
        normalize,
    ])
    # What manifest.json declares and visionq reproduces: shorter side, centre crop, bilinear (PIL).
    val = T.Compose([T.Resize(eval_resize(args.image_size)), T.CenterCrop(args.image_size), T.ToTensor(), normalize])
    return train, val


# ---------------------------------------------------------------- model

class VGG(nn.Module):
    """torchvision's VGG (same module names, so its state_dicts load) with every width divided."""

    def __init__(self, arch, num_classes, divisor):
        super().__init__()
        base, bn = arch.replace('_bn', ''), arch.endswith('_bn')
        layers, channels = [], 3
        for v in CONFIGS[base]:
            if v == 'M':
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                continue
            width = max(1, v // divisor)
            layers.append(nn.Conv2d(channels, width, kernel_size=3, padding=1))
            if bn:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU(inplace=True))
            channels = width
        hidden = max(1, 4096 // divisor)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(channels * 7 * 7, hidden), nn.ReLU(True), nn.Dropout(),
            nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(),
            nn.Linear(hidden, num_classes),
        )
        # torchvision's initialisation.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class FixedAdaptiveAvgPool(nn.Module):
    """AdaptiveAvgPool2d((out, out)) for one input size, as two matrix products.

    The same numbers as PyTorch's adaptive pooling (each output cell averages the input cells
    floor(i*in/out) .. ceil((i+1)*in/out)), but exportable for every size: torch 1.13 cannot
    export an adaptive pool whose output size does not divide its input (image sizes other
    than multiples of 224).
    """

    def __init__(self, size_in, size_out):
        super().__init__()
        pool = torch.zeros(size_out, size_in)
        for i in range(size_out):
            start, end = (i * size_in) // size_out, -((-(i + 1) * size_in) // size_out)
            pool[i, start:end] = 1.0 / (end - start)
        self.register_buffer('rows', pool)
        self.register_buffer('cols', pool.t().contiguous())

    def forward(self, x):
        return torch.matmul(torch.matmul(self.rows, x), self.cols)


def load_weights(model, path):
    try:
        state = torch.load(path, map_location='cpu')
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's input
        raise UsageError(f'--weights {path}: not a PyTorch state_dict ({err})')
    if isinstance(state, dict) and 'state_dict' in state:
        state = state['state_dict']
    own = model.state_dict()
    last = 'classifier.6.'
    kept = {k: v for k, v in state.items() if not k.startswith(last)}
    missing = [k for k in own if not k.startswith(last) and k not in kept]
    wrong = [k for k, v in kept.items() if k in own and own[k].shape != v.shape]
    unknown = [k for k in kept if k not in own]
    if missing or wrong or unknown:
        detail = f'missing {missing[:3]}' if missing else f'shape differs for {wrong[:3]}' if wrong else f'unknown keys {unknown[:3]}'
        raise UsageError(f'--weights {path} does not fit this --arch/--width-divisor: {detail} (torchvision weights need --width-divisor 1)')
    model.load_state_dict(kept, strict=False)


# ---------------------------------------------------------------- evaluation

def evaluate(model, loader, device):
    model.eval()
    logits = []
    with torch.no_grad():
        for x, _ in loader:
            logits.append(model(x.to(device)).float().cpu())
    return torch.cat(logits) if logits else torch.zeros(0)


def metrics_of(truth, predicted, classes):
    n = len(classes)
    matrix = np.zeros((n, n), dtype=np.int64)
    for t, p in zip(truth, predicted):
        matrix[t, p] += 1
    total = int(matrix.sum())
    observed = float(np.trace(matrix)) / total
    expected = float((matrix.sum(axis=0) * matrix.sum(axis=1)).sum()) / (total * total)
    kappa = 1.0 if expected == 1 else (observed - expected) / (1 - expected)
    per_class = []
    for i, label in enumerate(classes):
        predicted_i, support = int(matrix[:, i].sum()), int(matrix[i, :].sum())
        per_class.append({
            'label': label,
            'precision': None if predicted_i == 0 else round(float(matrix[i, i]) / predicted_i, 6),
            'recall': None if support == 0 else round(float(matrix[i, i]) / support, 6),
            'support': support,
        })
    return {
        'split': 'val',
        'images': total,
        'accuracy': round(observed, 6),
        'cohen_kappa': round(kappa, 6),
        'classes': classes,
        'per_class': per_class,
        'confusion_matrix': matrix.tolist(),
        'confusion_matrix_png': 'confusion.png',
    }


def draw_confusion(matrix, classes, path):
    """Rows: true class; columns: predicted; each cell its count, shaded by its share of the row."""
    font = ImageFont.truetype(FONT, 12) if os.path.exists(FONT) else ImageFont.load_default()
    n = len(classes)
    cell = 36
    names = [c if len(c) <= 24 else c[:22] + '..' for c in classes]
    left = 12 + max(font.getbbox(f'{i}  {name}')[2] for i, name in enumerate(names))
    top = 44
    footer = 'rows: true class; cells: validation images'
    width, height = max(left + n * cell + 12, font.getbbox(footer)[2] + 12), top + n * cell + 30
    img = Image.new('RGB', (width, height), 'white')
    draw = ImageDraw.Draw(img)
    draw.text((left, 6), 'predicted class ->', fill='black', font=font)
    draw.text((6, height - 22), footer, fill='black', font=font)
    for j in range(n):
        draw.text((left + j * cell + cell // 2 - 3, top - 16), str(j), fill='black', font=font)
    for i, name in enumerate(names):
        draw.text((6, top + i * cell + cell // 2 - 6), f'{i}  {name}', fill='black', font=font)
        row_total = max(1, sum(matrix[i]))
        for j in range(n):
            share = matrix[i][j] / row_total
            shade = (int(255 - 200 * share), int(255 - 140 * share), 255) if i == j else (255, int(255 - 180 * share), int(255 - 180 * share))
            box = (left + j * cell, top + i * cell, left + (j + 1) * cell - 1, top + (i + 1) * cell - 1)
            draw.rectangle(box, fill=shade, outline=(200, 200, 200))
            text = str(matrix[i][j])
            w = font.getbbox(text)[2]
            draw.text((box[0] + (cell - w) // 2, box[1] + cell // 2 - 6), text, fill='black', font=font)
    img.save(path)


# ---------------------------------------------------------------- main

def main(argv):
    args = parse_args(argv)
    started = time.time()
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    device = torch.device('cuda' if args.device == 'cuda' or (args.device == 'auto' and torch.cuda.is_available()) else 'cpu')
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise UsageError('--device cuda: torch sees no CUDA device')

    classes, train, val = read_splits(args.data, args.val_fraction, args.seed)
    train_tf, val_tf = transforms(args)
    generator = torch.Generator().manual_seed(args.seed)
    train_loader = torch.utils.data.DataLoader(Images(train, train_tf), batch_size=args.batch_size, shuffle=True, generator=generator, drop_last=len(train) > args.batch_size)
    val_loader = torch.utils.data.DataLoader(Images(val, val_tf), batch_size=args.batch_size)

    model = VGG(args.arch, len(classes), args.width_divisor)
    if args.weights:
        load_weights(model, args.weights)
    model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    amp = device.type == 'cuda'
    scaler = torch.cuda.amp.GradScaler(enabled=amp)
    loss_fn = nn.CrossEntropyLoss()
    emit('start', classes=classes, train_images=len(train), val_images=len(val), arch=args.arch, device=device.type,
         parameters=sum(p.numel() for p in model.parameters()))

    truth = torch.tensor([label for _, label in val])
    for epoch in range(1, args.epochs + 1):
        epoch_started = time.time()
        model.train()
        seen, correct, loss_sum = 0, 0, 0.0
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device.type, enabled=amp):
                out = model(x)
                loss = loss_fn(out, y)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            seen += len(y)
            correct += int((out.argmax(1) == y).sum())
            loss_sum += float(loss) * len(y)
        scheduler.step()
        val_accuracy = float((evaluate(model, val_loader, device).argmax(1) == truth).float().mean())
        seconds = time.time() - epoch_started
        emit('epoch', epoch=epoch, epochs=args.epochs, train_loss=round(loss_sum / max(1, seen), 6), train_accuracy=round(correct / max(1, seen), 6),
             val_accuracy=round(val_accuracy, 6), lr=round(scheduler.get_last_lr()[0], 8), seconds=round(seconds, 3),
             eta_seconds=round((time.time() - started) / epoch * (args.epochs - epoch), 1))

    # Evaluation and export run in float32 on the CPU: what the parity check compares against.
    model.to('cpu').eval()
    logits = evaluate(model, val_loader, torch.device('cpu'))
    probabilities = torch.softmax(logits, 1)
    top1 = probabilities.argmax(1)
    metrics = metrics_of(truth.tolist(), top1.tolist(), classes)
    metrics['training'] = {
        'arch': args.arch, 'width_divisor': args.width_divisor, 'epochs': args.epochs, 'batch_size': args.batch_size,
        'image_size': args.image_size, 'lr': args.lr, 'momentum': args.momentum, 'weight_decay': args.weight_decay,
        'flip': args.flip, 'jitter': args.jitter, 'seed': args.seed, 'device': device.type, 'mixed_precision': amp,
        'train_images': len(train), 'weights': os.path.basename(args.weights) if args.weights else None,
        'seconds': round(time.time() - started, 1),
    }

    os.makedirs(args.out, exist_ok=False)
    feature = args.image_size // 32
    if feature != 7:
        model.avgpool = FixedAdaptiveAvgPool(feature, 7)
        with torch.no_grad():
            difference = float((evaluate(model, val_loader, torch.device('cpu')) - logits).abs().max())
        if difference > 1e-4:
            raise RuntimeError(f'the exportable pooling differs from AdaptiveAvgPool2d by {difference}')
    dummy = torch.zeros(1, 3, args.image_size, args.image_size)
    torch.onnx.export(model, dummy, os.path.join(args.out, 'model.onnx'), input_names=['input'], output_names=['logits'],
                      dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}}, opset_version=OPSET, do_constant_folding=True)
    manifest = {
        'name': args.name,
        'version': args.version,
        'description': f'{args.arch} (width ÷{args.width_divisor}) trained by visionq train on {len(train)} images of {len(classes)} classes; '
                       f'validation accuracy {metrics["accuracy"] * 100:.1f}% on {len(val)} images.',
        'input': {'name': 'input', 'layout': 'NCHW', 'height': args.image_size, 'width': args.image_size, 'channels': 3},
        'output': {'name': 'logits', 'activation': 'softmax'},
        'preprocess': {'resize_mode': 'shorter_side', 'resize_size': eval_resize(args.image_size), 'interpolation': 'bilinear',
                       'mean': MEAN, 'std': STD, 'scale': 255, 'channel_order': 'RGB'},
        'labels': 'labels.txt',
    }
    with open(os.path.join(args.out, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=2)
    with open(os.path.join(args.out, 'labels.txt'), 'w') as f:
        f.write(''.join(c + '\n' for c in classes))
    with open(os.path.join(args.out, 'metrics.json'), 'w') as f:
        json.dump(metrics, f, indent=2)
    draw_confusion(metrics['confusion_matrix'], classes, os.path.join(args.out, 'confusion.png'))
    with open(os.path.join(args.out, 'validation.json'), 'w') as f:
        json.dump([{'image': os.path.abspath(path), 'label': label, 'top1': int(top1[i]), 'probability': round(float(probabilities[i, top1[i]]), 6)}
                   for i, (path, label) in enumerate(val)], f)
    emit('done', accuracy=metrics['accuracy'], cohen_kappa=metrics['cohen_kappa'], val_images=len(val), seconds=round(time.time() - started, 1))


if __name__ == '__main__':
    try:
        main(sys.argv[1:])
    except UsageError as err:
        print(f'train: {err}', file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        # Ctrl-C reaches the whole process group; `visionq train` says what was stopped and cleans up.
        sys.exit(130)
