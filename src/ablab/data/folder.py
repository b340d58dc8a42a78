"""``folder:DIR``: one sub-folder per class of PNG/JPEG images (read with Pillow), the layout of
torchvision's ``ImageFolder``::

    DIR/cat/001.png  DIR/dog/002.jpg ...                 (a test split is held out)
    DIR/train/cat/001.png ...  DIR/test/cat/101.png ...   (train/ and test/ when present)

Class names are the sub-folder names, sorted (label = position). Every image must have the same size;
greyscale images give 1 channel, colour 3 (RGBA/palette images are converted to RGB; a mix of grey and
colour is read as RGB), and the conversion is recorded. 16-bit greyscale images are read at their own
scale — as floats value / 65535 in [0, 1], 8-bit images among them as value / 255 — never clipped to
8 bits; 16-bit and colour images together are refused. Other files are ignored; a class folder without
images is an error.

Nothing is decoded before it is known to fit: a first pass reads only the headers (Pillow's lazy open), and
the decoded pixels — images × width × height × channels × bytes per value — are charged against the memory
budget (:mod:`ablab.data.budget`) before the first pixel is decoded. Pillow's decompression-bomb check (an
image of more than ``Image.MAX_IMAGE_PIXELS`` pixels) and its limits on compressed PNG chunks (a zTXt/iTXt
text or an iCCP profile inflating past 1 MB) are errors naming the file, as is any file Pillow cannot read.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ablab.data.budget import check_fits
from ablab.data.errors import DataError

SUFFIXES = (".png", ".jpg", ".jpeg")
GREY_MODES = ("L", "1", "LA", "I;16", "I;16B", "I;16L", "I;16N", "I")
DEEP_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # 16-bit greyscale (Pillow may open a 16-bit PNG as "I")
DEEP_MAX = 65535


def _class_dirs(root: Path) -> list[Path]:
    return sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def image_files(root: Path) -> dict[str, list[tuple[str, Path]]]:
    """split ("train", and "test" when DIR/train and DIR/test exist) -> [(class name, image path)]."""
    splits = {"train": root / "train", "test": root / "test"}
    has_split = splits["train"].is_dir() and splits["test"].is_dir()
    out: dict[str, list[tuple[str, Path]]] = {}
    for split, folder in (splits.items() if has_split else [("train", root)]):
        classes = _class_dirs(folder)
        if not classes:
            raise DataError(f"folder:{folder}: no class sub-folders (expected one folder per class of "
                            f"{'/'.join(s[1:].upper() for s in SUFFIXES)} images, e.g. {folder}/cat/001.png)")
        files: list[tuple[str, Path]] = []
        for c in classes:
            imgs = sorted(p for p in c.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
            if not imgs:
                raise DataError(f"folder:{c}: no PNG/JPEG images in this class folder")
            files += [(c.name, p) for p in imgs]
        out[split] = files
    if has_split:
        train_classes = {c for c, _ in out["train"]}
        extra = sorted({c for c, _ in out["test"]} - train_classes)
        if extra:
            raise DataError(f"folder:{root}/test: class folder(s) {', '.join(extra)} have no counterpart in "
                            f"{root}/train")
    return out


# what Pillow raises on a damaged or hostile file (besides its own bomb errors): an error naming the file
_UNREADABLE = (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, KeyError, struct.error, zlib.error)
PEAK = 4  # copies at the peak of reading a folder: 3.1x measured (400 RGB 512x512 PNGs: 300 MiB of pixels, +924 MiB)


@contextmanager
def _image(path: Path) -> Iterator[Any]:
    """``Image.open(path)`` (lazy: the header only, until pixels are asked for), every failure of reading it
    — in the header pass or while decoding — one DataError naming the file."""
    from PIL import Image, PngImagePlugin

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                yield im
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        what = str(e).split(",")[0]  # "Image size (N pixels) exceeds limit of M pixels"
        raise DataError(f"{path}: {what}: Pillow's decompression-bomb limit; ablab does not decode it (resize the "
                        "image to the size your network reads)") from None
    except ValueError as e:
        if "MAX_TEXT" not in str(e) and "text chunks" not in str(e):
            raise DataError(f"{path}: not a readable image ({e})") from None
        limits = f"{PngImagePlugin.MAX_TEXT_CHUNK:,} bytes (or {PngImagePlugin.MAX_TEXT_MEMORY:,} of text in all)"
        raise DataError(f"{path}: a compressed PNG chunk (zTXt/iTXt text or an iCCP profile) inflates past Pillow's "
                        f"limit of {limits}; ablab does not read it (save the image again without its metadata)"
                        ) from None
    except _UNREADABLE as e:
        raise DataError(f"{path}: not a readable image ({e or type(e).__name__})") from None


def _read(files: list[tuple[str, Path]], label_of: dict[str, int], root: Path,
          size: tuple[int, int] | None, first: Path | None, rgb: bool,
          deep: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
    channels = 3 if rgb else 1
    assert size is not None
    x = np.empty((len(files), channels, size[1], size[0]), dtype=np.float32 if deep else np.uint8)  # (N, C, H, W)
    y = np.empty(len(files), dtype=np.int64)
    converted: list[str] = []
    for i, (cls, path) in enumerate(files):
        with _image(path) as im:
            if im.size != size:  # the file changed since the header pass
                raise DataError(f"folder:{root}: images differ in size: {path} is {im.size[0]}x{im.size[1]} "
                                f"(width x height) but {first} is {size[0]}x{size[1]}; resize them to one size")
            if deep:  # 16-bit greyscale at its own scale: value / 65535 (8-bit ones: value / 255)
                arr = _deep(im, path)
            else:
                if im.mode not in ("RGB", "L"):
                    converted.append(f"{path.name}: {im.mode}")
                arr = np.asarray(im.convert("RGB" if rgb else "L"))  # (H, W, 3) or (H, W)
        x[i] = arr.transpose(2, 0, 1) if rgb else arr[None]
        y[i] = label_of[cls]
    return x, y, converted


def _deep(im: Any, path: Path) -> np.ndarray:
    """A greyscale image of a 16-bit set as floats in [0, 1]."""
    if im.mode in DEEP_MODES:
        arr = np.asarray(im).astype(np.float64)
        if arr.size and (arr.min() < 0 or arr.max() > DEEP_MAX):
            raise DataError(f"{path}: {im.mode} image with values {arr.min():g}..{arr.max():g}, outside the 16-bit "
                            f"range 0..{DEEP_MAX}; save it as an 8- or 16-bit PNG")
        return (arr / DEEP_MAX).astype(np.float32)
    return (np.asarray(im.convert("L")).astype(np.float64) / 255).astype(np.float32)


def read_folder(root: Path) -> tuple[Any, Any, Any, list[str], dict[str, Any]]:
    splits = image_files(root)
    names = sorted({c for c, _ in splits["train"]})
    label_of = {c: k for k, c in enumerate(names)}
    everything = [p for files in splits.values() for _, p in files]
    # one pass over the headers (cheap: Pillow reads no pixels here) for the size and the colour mode
    size: tuple[int, int] | None = None
    first: Path | None = None
    rgb = deep = False
    for path in everything:
        with _image(path) as im:
            if size is None:
                size, first = im.size, path
            elif im.size != size:
                raise DataError(f"folder:{root}: images differ in size: {path} is {im.size[0]}x{im.size[1]} "
                                f"(width x height) but {first} is {size[0]}x{size[1]}; resize them to one size")
            rgb = rgb or im.mode not in GREY_MODES
            deep = deep or im.mode in DEEP_MODES
            if im.mode == "F":
                raise DataError(f"{path}: a 32-bit float image; ablab reads 8- and 16-bit images (save it as a "
                                "16-bit PNG, or pass the arrays with npz:)")
    if deep and rgb:
        raise DataError(f"folder:{root}: a mix of 16-bit greyscale and colour images; convert them to one kind")
    assert size is not None  # image_files found at least one image
    width, height, channels = size[0], size[1], 3 if rgb else 1
    # the decoded pixels, charged before the first is decoded; a 16-bit image also holds one float64 copy while read
    need = len(everything) * width * height * channels * (4 if deep else 1) + width * height * (8 if deep else 4)
    check_fits(need, f"folder:{root}: {len(everything):,} images of {width}x{height}x{channels}"
               f"{' (16-bit, read as float32)' if deep else ''}", "use fewer or smaller images", peak=PEAK)
    x, y, conv = _read(splits["train"], label_of, root, size, first, rgb, deep)
    test = None
    if "test" in splits:
        xt, yt, conv_t = _read(splits["test"], label_of, root, size, first, rgb, deep)
        test, conv = (xt, yt), conv + conv_t
    info: dict[str, Any] = {"images": len(everything),
                            "color": "RGB" if rgb else "16-bit greyscale (value / 65535)" if deep else "greyscale",
                            "layout": "train/ and test/" if test is not None else "class folders (test held out)"}
    if conv:
        info["converted"] = f"{len(conv)} image(s) converted to {'RGB' if rgb else 'L'} (e.g. {conv[0]})"
    return x, y, test, names, info
