"""The objects world's drawings: everyday-object emoji from several Iconify sets on npm, rasterised.

Each object is drawn by several artists (one emoji set each), so a model trained on them learns
the object, not one drawing. The sets are npm packages pinned in package.json
(devDependencies) and installed by `npm ci` into node_modules/@iconify-json/<set>/icons.json;
`resvg-py` (the `export` extra) turns their SVG into pixels.

Licences (named in the model card):

* `@iconify-json/noto`: Google's Noto Emoji, Apache-2.0;
* `@iconify-json/twemoji`: Twitter's Twemoji, CC-BY-4.0 (attribution in the model card);
* `@iconify-json/fluent-emoji-flat`: Microsoft's Fluent Emoji (flat), MIT.

OpenMoji (`@iconify-json/openmoji`) has all the objects too but is NOT used: it is CC-BY-SA-4.0,
and whether trained weights are an adaptation that must carry the share-alike licence is an
open question; sdlens ships its weights under its own terms, so it only learns from sets whose
licences ask for attribution at most. Three sets are enough for several drawings per object.

A set that is missing (not installed, or an object's icon gone from it) is an error that names
the set and the fix; the world never silently shrinks.
"""

from __future__ import annotations

import functools
import io
import json
import os
from pathlib import Path

import numpy as np

from sdlens.errors import SdlensError

ROOT = Path(__file__).resolve().parents[2]
# Where `npm ci` puts the sets; SDLENS_NODE_MODULES points elsewhere (e.g. a separate install).
NODE_MODULES_ENV = "SDLENS_NODE_MODULES"

SETS: dict[str, str] = {  # set -> licence
    "noto": "Apache-2.0",
    "twemoji": "CC-BY-4.0",
    "fluent-emoji-flat": "MIT",
}
SET_CREDITS: dict[str, str] = {
    "noto": "Noto Emoji by Google (Apache-2.0)",
    "twemoji": "Twemoji by Twitter, Inc. and contributors (CC-BY-4.0, https://creativecommons.org/licenses/by/4.0/)",
    "fluent-emoji-flat": "Fluent Emoji (flat) by Microsoft (MIT)",
}

# The object's word (what a caption says) -> its icon's name in each set. The sets happen to
# share Unicode's names for these, but they need not: the table is explicit so that a set whose
# name differs is one edit here, and a check that every name exists runs on every load.
OBJECTS: dict[str, dict[str, str]] = {
    word: {s: icon for s in SETS}
    for word, icon in {
        "apple": "red-apple", "banana": "banana", "strawberry": "strawberry", "pizza": "pizza",
        "hamburger": "hamburger", "carrot": "carrot", "mushroom": "mushroom", "tree": "deciduous-tree",
        "flower": "tulip", "sun": "sun", "moon": "crescent-moon", "cloud": "cloud", "star": "star",
        "heart": "red-heart", "house": "house", "car": "automobile", "boat": "sailboat", "rocket": "rocket",
        "balloon": "balloon", "umbrella": "umbrella", "cat": "cat-face", "dog": "dog-face", "fish": "fish",
        "butterfly": "butterfly",
    }.items()
}
ICON_PIXELS = 160  # rasterised once at this size; scenes scale them down (never up)


def node_modules() -> Path:
    return Path(os.environ.get(NODE_MODULES_ENV) or ROOT / "node_modules")


def _load_set(name: str, modules: Path) -> dict:
    path = modules / "@iconify-json" / name / "icons.json"
    if not path.is_file():
        raise SdlensError(f"emoji set @iconify-json/{name} is missing ({path} not found): the objects world needs "
                          f"all of {', '.join(SETS)}; run `npm ci` in the repository (they are pinned in "
                          f"package.json), or point {NODE_MODULES_ENV} at a node_modules that has them")
    return json.loads(path.read_text(encoding="utf-8"))


def _svg(icon_set: dict, icon: str) -> str:
    entry = icon_set["icons"][icon]
    w, h = entry.get("width", icon_set.get("width", 16)), entry.get("height", icon_set.get("height", 16))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'viewBox="{entry.get("left", 0)} {entry.get("top", 0)} {w} {h}" width="{w}" height="{h}">'
            f'{entry["body"]}</svg>')


def rasterise(svg: str, pixels: int = ICON_PIXELS) -> np.ndarray:
    """An SVG as a (pixels, pixels, 4) uint8 RGBA array (premultiplication undone by PIL)."""
    import resvg_py
    from PIL import Image

    png = resvg_py.svg_to_bytes(svg_string=svg, width=pixels, height=pixels)
    return np.asarray(Image.open(io.BytesIO(bytes(png))).convert("RGBA"), dtype=np.uint8)


@functools.lru_cache(maxsize=4)
def _icons_at(modules: str, pixels: int) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, np.ndarray]] = {word: {} for word in OBJECTS}
    for set_name in SETS:
        icon_set = _load_set(set_name, Path(modules))
        missing = sorted(names[set_name] for names in OBJECTS.values() if names[set_name] not in icon_set["icons"])
        if missing:
            raise SdlensError(f"emoji set @iconify-json/{set_name} lacks {', '.join(missing)}: its pinned version "
                              f"in package.json must be the one the objects world was made with (run `npm ci`)")
        for word, names in OBJECTS.items():
            out[word][set_name] = rasterise(_svg(icon_set, names[set_name]), pixels)
    return out


def icons(pixels: int = ICON_PIXELS) -> dict[str, dict[str, np.ndarray]]:
    """{object word: {set: RGBA array}} for every object and set (rasterised once per process)."""
    return _icons_at(str(node_modules()), pixels)
