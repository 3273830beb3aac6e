"""Image and array files for the command line (pillow, numpy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


def save_png(rgb: bytes, width: int, height: int, path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.frombytes("RGB", (width, height), rgb).save(path)


def save_npy(tensor, path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.asarray(tensor, dtype=np.float32))


# Beyond this many pixels a file is refused before it is decoded (PIL's own guard against
# "decompression bombs" is twice its MAX_IMAGE_PIXELS, ~179 megapixels); 8000×8000 is 64.
MAX_PIXELS = 120_000_000
# how PNG, JPEG, GIF and BMP files begin (WebP: "RIFF", size, "WEBP")
PICTURE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")


def load_init_image(path, width: int, height: int) -> tuple[dict, list[str]]:
    """A picture file → ({width, height, rgba} at the model's size, what was done to it, in words).

    The rule the page follows too: centre-crop to the model's aspect ratio, then resize to the
    model's size; at the model's size nothing changes. Transparent pixels are composited on white.
    Anything that is not a readable picture is an SdlensError in plain words."""
    from ..errors import SdlensError

    path = Path(path)
    name = path.name
    if not path.is_file():
        raise SdlensError(f"{path}: no such file (the picture to start from)")
    if path.stat().st_size == 0:
        raise SdlensError(f"{name} is an empty file, not a picture")
    notes = []
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(path) as picture:
            original = picture.size
            if original[0] * original[1] > MAX_PIXELS:
                raise SdlensError(f"{name} is {original[0]}×{original[1]}, too large to read; "
                                  f"scale it down below {MAX_PIXELS // 1_000_000} megapixels first")
            # A JPEG much larger than the model decodes at 1/2, 1/4 or 1/8 size directly, so an
            # 8000×8000 photo never needs its 190 MB of full-size pixels.
            if picture.format == "JPEG" and min(original) > 4 * max(width, height):
                picture.draft("RGB", (2 * width, 2 * height))
            picture.load()
            picture = ImageOps.exif_transpose(picture)
            picture, converted = _as_rgb(picture)
    except SdlensError:
        raise
    except UnidentifiedImageError:
        with open(path, "rb") as f:
            head = f.read(12)
        if head.startswith(PICTURE_SIGNATURES) or head[8:12] == b"WEBP":  # a picture's start, then garbage
            raise SdlensError(f"{name} is damaged and cannot be read (its header is broken)") from None
        raise SdlensError(f"{name} is not a picture (PNG, JPEG, WebP, GIF or BMP)") from None
    except Image.DecompressionBombError:
        raise SdlensError(f"{name} is too large to read; scale it down below "
                          f"{MAX_PIXELS // 1_000_000} megapixels first") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise SdlensError(f"{name} is damaged and cannot be read ({err})") from None
    if converted:
        notes.append(converted)

    w, h = picture.size
    steps = [f"{original[0]}×{original[1]}"]
    if w * height != h * width:  # centre-crop to the model's aspect ratio
        if w * height > h * width:
            crop_w, crop_h = round(h * width / height), h
        else:
            crop_w, crop_h = w, round(w * height / width)
        left, top = (w - crop_w) // 2, (h - crop_h) // 2
        picture = picture.crop((left, top, left + crop_w, top + crop_h))
        steps.append(f"cropped to {crop_w}×{crop_h}")
    if picture.size != (width, height):
        picture = picture.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
        steps.append(f"{width}×{height}")
    if len(steps) > 1:
        notes.append(f"picture resized to the model's size: {' → '.join(steps)}")
    rgba = picture.convert("RGBA").tobytes()
    return {"width": width, "height": height, "rgba": rgba}, notes


def _as_rgb(picture):
    """The picture as RGB, and a note when that changed what it looks like (transparency, CMYK,
    greyscale); transparent pixels go on a white background."""
    mode = picture.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in picture.info):
        rgba = picture.convert("RGBA")
        if rgba.getextrema()[3][0] < 255:
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB"), \
                "the picture has transparent parts; they are put on a white background"
        return rgba.convert("RGB"), ""
    if mode == "CMYK":
        return picture.convert("RGB"), "the picture is CMYK (print colours); converted to RGB"
    if mode in ("L", "1", "I", "I;16", "F"):
        if mode in ("I", "I;16", "F"):  # 16-bit or float greyscale: scale to 8 bits first
            low, high = picture.getextrema()
            scale = 255 / (high - low) if high > low else 0
            picture = picture.point(lambda v: (v - low) * scale).convert("L")
        return picture.convert("RGB"), "the picture is greyscale; it is used as a grey RGB picture"
    return picture.convert("RGB"), ""
