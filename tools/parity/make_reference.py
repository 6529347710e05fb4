#!/usr/bin/python3
"""Builds the torchvision parity reference for packages/imaging.

For every photo in test/fixtures/photos/ this runs exactly what a torchvision
training/eval pipeline does with a PIL image:

    img = ImageOps.exif_transpose(Image.open(path)).convert('RGB')
    Resize(256) -> CenterCrop(224)                      (shorter_side mode)
    Resize((224, 224))                                  (direct mode, DIRECT_PHOTOS only)
    ToTensor() -> Normalize(IMAGENET_MEAN, IMAGENET_STD)

and stores, in test/fixtures/parity/:

    <stem>.shorter_side.png   the 224x224 RGB crop (lossless, what ToTensor receives)
    <stem>.direct.png         the 224x224 RGB direct resize (DIRECT_PHOTOS only)
    reference.json            sizes, crop box, and per-channel sum/mean of the
                              normalised float32 tensor (summed in float64)

Run with Debian's interpreter, which has torch/torchvision/PIL:
    /usr/bin/python3 tools/parity/make_reference.py
"""

import json
import pathlib
import sys

import PIL
import torch
import torchvision
from PIL import Image, ImageOps
from torchvision import transforms as T

ROOT = pathlib.Path(__file__).resolve().parents[2]
PHOTOS = ROOT / "test" / "fixtures" / "photos"
OUT = ROOT / "test" / "fixtures" / "parity"

RESIZE = 256
CROP = 224
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
PHOTO_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".gif"}
# Non-square photos whose Resize((h, w)) variant is also recorded.
DIRECT_PHOTOS = {"coffee.png"}


def save_png(img: Image.Image, path: pathlib.Path) -> None:
    # A derived image keeps the source's info, ICC profile included; PIL never applied
    # that profile, so the stored pixels must not carry it either.
    img.info = {}
    img.save(path, optimize=True)


def load(path: pathlib.Path) -> Image.Image:
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def tensor_stats(img: Image.Image) -> dict:
    t = T.Normalize(MEAN, STD)(T.ToTensor()(img))  # float32, C x H x W
    d = t.double()
    return {
        "sum": [float(x) for x in d.sum(dim=(1, 2))],
        "mean": [float(x) for x in d.mean(dim=(1, 2))],
    }


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    shorter = T.Compose([T.Resize(RESIZE), T.CenterCrop(CROP)])
    direct = T.Resize((CROP, CROP))
    photos = {}
    for path in sorted(PHOTOS.iterdir()):
        if path.suffix.lower() not in PHOTO_SUFFIXES:
            continue
        img = load(path)
        resized = T.Resize(RESIZE)(img)
        crop = shorter(img)
        assert crop.size == (CROP, CROP) and crop.mode == "RGB"
        crop_name = f"{path.stem}.shorter_side.png"
        save_png(crop, OUT / crop_name)
        entry = {
            "source": path.name,
            "width": img.width,
            "height": img.height,
            "resized": [resized.width, resized.height],
            "shorter_side": {"png": crop_name, **tensor_stats(crop)},
        }
        if path.name in DIRECT_PHOTOS:
            out = direct(img)
            direct_name = f"{path.stem}.direct.png"
            save_png(out, OUT / direct_name)
            entry["direct"] = {"png": direct_name, **tensor_stats(out)}
        photos[path.name] = entry
        print(f"{path.name}: {img.width}x{img.height} -> {resized.width}x{resized.height} -> {CROP}x{CROP}")

    reference = {
        "generator": "tools/parity/make_reference.py",
        "versions": {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "pillow": PIL.__version__,
        },
        "spec": {"resizeSize": RESIZE, "height": CROP, "width": CROP, "mean": MEAN, "std": STD, "scale": 255},
        "photos": photos,
    }
    (OUT / "reference.json").write_text(json.dumps(reference, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
