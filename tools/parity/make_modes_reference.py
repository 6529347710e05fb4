#!/usr/bin/python3
"""Builds the Pillow reference for visionq's other interpolations and resize modes.

For a few photos of test/fixtures/photos/ this runs, on
`img = ImageOps.exif_transpose(Image.open(path)).convert('RGB')`, what torchvision's
transforms do with `interpolation=` BICUBIC or NEAREST:

    Resize(256, interpolation) -> CenterCrop(224)     (shorter_side)
    Resize((224, 224), interpolation)                 (direct)

and the letterbox of detection-style models, Pillow's own:

    ImageOps.pad(img, (width, height), method=BILINEAR, color=(114, 114, 114))

and stores each result losslessly in test/fixtures/parity/modes/ as
<stem>.<mode>.<interpolation>.png or <stem>.letterbox.<width>x<height>.png, for
test/unit/imaging-modes.test.ts to compare byte for byte. Run with Debian's interpreter
(torch, torchvision, PIL):

    /usr/bin/python3 tools/parity/make_modes_reference.py
"""

import pathlib

from PIL import Image, ImageOps
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

ROOT = pathlib.Path(__file__).resolve().parents[2]
PHOTOS = ROOT / "test" / "fixtures" / "photos"
OUT = ROOT / "test" / "fixtures" / "parity" / "modes"
# A landscape JPEG, a square PNG and a landscape PNG.
SOURCES = ["rocket.jpg", "astronaut.png", "coffee.png"]
INTERPOLATIONS = {"bicubic": InterpolationMode.BICUBIC, "nearest": InterpolationMode.NEAREST}
# Padded above and below (224x224 of a landscape photo), left and right (256x160), or not at all (a square photo in 224x224).
LETTERBOXES = [(224, 224), (256, 160)]
PAD = (114, 114, 114)


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
        for width, height in LETTERBOXES:
            ImageOps.pad(img, (width, height), method=Image.Resampling.BILINEAR, color=PAD).save(OUT / f"{stem}.letterbox.{width}x{height}.png")
            print(f"{stem}: letterbox {width}x{height} written")


if __name__ == "__main__":
    main()
