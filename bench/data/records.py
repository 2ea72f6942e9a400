"""Decoders for the three kinds of CIFAR-10 record: a pickled Python batch, a binary batch and one
image file. Each takes the raw bytes and `where` (the file, or archive and member, for messages)
and checks what it decodes, so a damaged file is reported by name instead of training on garbage.
"""
from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from bench.data.splits import IMAGE_SHAPE, NUM_CLASSES
from bench.errors import UserError

PIXELS = 32 * 32 * 3
BINARY_RECORD = 1 + PIXELS  # one label byte, then the 3072 pixel bytes (channel-major)

# What a Python batch may contain: a dict of NumPy arrays, scalars, lists and strings (bytes
# pickled by Python 3 at protocol 2 go through _codecs.encode). Anything else (a function, a
# class) is refused rather than run, since unpickling executes code.
_PICKLE_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    *((f"numpy.{core}.multiarray", name) for core in ("core", "_core") for name in ("_reconstruct", "scalar")),
    ("_codecs", "encode"),
}

_REFETCH = "re-extract the official archive, or remove this copy and let the loader download one"


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _chw_to_nhwc(flat: np.ndarray) -> np.ndarray:
    """The official batches store each image channel-major (1024 R, 1024 G, 1024 B)."""
    return np.ascontiguousarray(flat.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def _labels(values: np.ndarray, count: int, where: str) -> np.ndarray:
    labels = np.asarray(values, dtype=np.int64)
    if labels.shape != (count,):
        raise UserError(f"{where}: {labels.size} labels for {count} images; expected one label per image; {_REFETCH}")
    bad = labels[(labels < 0) | (labels >= NUM_CLASSES)]
    if bad.size:
        raise UserError(f"{where}: label {bad[0]} is out of range; expected labels 0..{NUM_CLASSES - 1}; {_REFETCH}")
    return labels


def python_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """A `cifar-10-batches-py` file: a Python 2 pickle of {'data': (N, 3072) uint8, 'labels': [N]}."""
    try:
        # latin1 is how Python 3 reads the NumPy arrays inside a Python 2 pickle (as torchvision does).
        batch = _BatchUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except Exception as exc:  # a damaged pickle raises anything from EOFError to KeyError
        raise UserError(f"{where}: not a readable Python batch ({type(exc).__name__}: {exc}); "
                        f"expected a pickled CIFAR-10 batch; {_REFETCH}") from None
    if not isinstance(batch, dict) or "data" not in batch or "labels" not in batch:
        raise UserError(f"{where}: pickle holds no 'data' and 'labels'; expected a CIFAR-10 Python batch; {_REFETCH}")
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        shape = getattr(data, "shape", type(data).__name__)
        raise UserError(f"{where}: 'data' is {shape}; expected an N x {PIXELS} uint8 array; {_REFETCH}")
    return _chw_to_nhwc(data), _labels(batch["labels"], len(data), where)


def binary_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """A `cifar-10-batches-bin` file: N records of a label byte followed by 3072 pixel bytes."""
    if len(raw) == 0 or len(raw) % BINARY_RECORD:
        raise UserError(f"{where}: {len(raw)} bytes is not a whole number of records; expected a multiple of "
                        f"{BINARY_RECORD} (1 label + {PIXELS} pixel bytes); the file is truncated or not a "
                        f"CIFAR-10 binary batch; {_REFETCH}")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, BINARY_RECORD)
    return _chw_to_nhwc(records[:, 1:]), _labels(records[:, 0], len(records), where)


def image(raw: bytes, where: str) -> tuple[np.ndarray, bool]:
    """One image file of an image-folder tree -> ((32, 32, 3) uint8, whether it is a lossy JPEG)."""
    try:
        with Image.open(io.BytesIO(raw)) as img:
            if img.size != IMAGE_SHAPE[:2]:
                raise UserError(f"{where}: image is {img.size[0]}x{img.size[1]}; expected 32x32 like every "
                                f"CIFAR-10 image; resize it or remove it from the tree")
            lossy = img.format == "JPEG"
            pixels = np.asarray(img if img.mode == "RGB" else img.convert("RGB"))
    except UserError:
        raise
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise UserError(f"{where}: not a decodable image ({exc}); expected a 32x32 image Pillow can convert "
                        f"to RGB (PNG or JPEG); replace or remove the file") from None
    return pixels, lossy
