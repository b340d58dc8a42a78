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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

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


def _read(files: list[tuple[str, Path]], label_of: dict[str, int], root: Path,
          size: tuple[int, int] | None, first: Path | None, rgb: bool,
          deep: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from PIL import Image, UnidentifiedImageError

    channels = 3 if rgb else 1
    assert size is not None
    x = np.empty((len(files), channels, size[1], size[0]), dtype=np.float32 if deep else np.uint8)  # (N, C, H, W)
    y = np.empty(len(files), dtype=np.int64)
    converted: list[str] = []
    for i, (cls, path) in enumerate(files):
        try:
            with Image.open(path) as im:
                if im.size != size:
                    raise DataError(f"folder:{root}: images differ in size: {path} is {im.size[0]}x{im.size[1]} "
                                    f"(width x height) but {first} is {size[0]}x{size[1]}; resize them to one size")
                if deep:  # 16-bit greyscale at its own scale: value / 65535 (8-bit ones: value / 255)
                    arr = _deep(im, path)
                else:
                    if im.mode not in ("RGB", "L"):
                        converted.append(f"{path.name}: {im.mode}")
                    arr = np.asarray(im.convert("RGB" if rgb else "L"))  # (H, W, 3) or (H, W)
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(f"{path}: not a readable image ({e})") from None
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
    from PIL import Image, UnidentifiedImageError

    splits = image_files(root)
    names = sorted({c for c, _ in splits["train"]})
    label_of = {c: k for k, c in enumerate(names)}
    everything = [p for files in splits.values() for _, p in files]
    # one pass over the headers (cheap: Pillow reads no pixels here) for the size and the colour mode
    size: tuple[int, int] | None = None
    first: Path | None = None
    rgb = deep = False
    for path in everything:
        try:
            with Image.open(path) as im:
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
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(f"{path}: not a readable image ({e})") from None
    if deep and rgb:
        raise DataError(f"folder:{root}: a mix of 16-bit greyscale and colour images; convert them to one kind")
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
