#!/usr/bin/python3
"""Builds the Pillow reference for visionq's other interpolations (bicubic, nearest).

For a few photos of test/fixtures/photos/ this runs what torchvision's transforms do with
a PIL image and `interpolation=` BICUBIC or NEAREST:

    img = ImageOps.exif_transpose(Image.open(path)).convert('RGB')
    Resize(256, interpolation) -> CenterCrop(224)     (shorter_side)
    Resize((224, 224), interpolation)                 (direct)

and stores each 224x224 RGB result losslessly in test/fixtures/parity/interpolation/ as
<stem>.<mode>.<interpolation>.png, for test/unit/imaging-interpolation.test.ts to compare
byte for byte. Run with Debian's interpreter (torch, torchvision, PIL):

    /usr/bin/python3 tools/parity/make_interpolation_reference.py
"""

import pathlib

from PIL import Image, ImageOps
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

ROOT = pathlib.Path(__file__).resolve().parents[2]
PHOTOS = ROOT / "test" / "fixtures" / "photos"
OUT = ROOT / "test" / "fixtures" / "parity" / "interpolation"
# A landscape JPEG, a square PNG and a landscape PNG.
SOURCES = ["rocket.jpg", "astronaut.png", "coffee.png"]
INTERPOLATIONS = {"bicubic": InterpolationMode.BICUBIC, "nearest": InterpolationMode.NEAREST}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name in SOURCES:
        img = ImageOps.exif_transpose(Image.open(PHOTOS / name)).convert("RGB")
        stem = pathlib.Path(name).stem
        for label, mode in INTERPOLATIONS.items():
            shorter = T.Compose([T.Resize(256, interpolation=mode), T.CenterCrop(224)])(img)
            direct = T.Resize((224, 224), interpolation=mode)(img)
            shorter.save(OUT / f"{stem}.shorter_side.{label}.png")
            direct.save(OUT / f"{stem}.direct.{label}.png")
            print(f"{stem}: {label} written")


if __name__ == "__main__":
    main()
