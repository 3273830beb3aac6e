"""Image and array files for the command line (pillow, numpy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def save_png(rgb: bytes, width: int, height: int, path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.frombytes("RGB", (width, height), rgb).save(path)


def save_npy(tensor, path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.asarray(tensor, dtype=np.float32))
