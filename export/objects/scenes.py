"""A captioned world of everyday objects: the training data of the objects model.

Each scene is one or two emoji objects (see `icons`: each drawn by one of several emoji sets)
on a flat background, and its caption says what is drawn in the words students type: "a big cat
on the left, light blue background", "a tree on the left and a house on the right". Positions
(the nine of the shapes world), size words and position phrases are the shapes world's, so the
two models answer the same prompts about place and size.

Some object+position pairs are HELD OUT: no training picture ever shows, say, a cat in the top
left corner, although cats appear everywhere else and other objects appear there. Drawing "a cat
in the top left corner" then needs the model to compose "cat" and "top left".

Deterministic: the same seed gives the same scenes, captions and pixels.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..shapes.scenes import GRID, POSITION_PHRASES, POSITIONS, SIZE_WORDS, _far_apart, words
from . import icons

IMAGE_SIZE = 64
SUPERSAMPLE = 2  # composed at 2x and box-filtered down

OBJECTS: tuple[str, ...] = tuple(icons.OBJECTS)
STYLES: tuple[str, ...] = tuple(icons.SETS)
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (248, 248, 248),
    "gray": (128, 128, 128),
    "light blue": (185, 215, 245),
    "beige": (235, 222, 190),
    "light green": (195, 230, 180),
}
BACKGROUND_WORDS = {"gray": ("gray", "grey")}
SIZES = {"small": 0.32, "large": 0.5}  # the icon's box as a fraction of the image side (icons have margins)

# Object+position pairs no training picture shows (as first or second object).
HELD_OUT: frozenset[tuple[str, str]] = frozenset({
    ("cat", "top left"), ("car", "top right"), ("apple", "bottom left"), ("house", "right"),
    ("fish", "top"), ("tree", "left"), ("rocket", "bottom right"), ("pizza", "bottom"),
})
TEMPLATE_WORDS = ("a", "an", "and", "on", "background")


@dataclass(frozen=True)
class Thing:
    name: str
    size: str
    position: str
    style: str = STYLES[0]  # which emoji set draws it
    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0
    mirrored: bool = False


@dataclass(frozen=True)
class Scene:
    background: str
    objects: tuple[Thing, ...] = field(default_factory=tuple)

    def attributes(self) -> dict:
        return {"background": self.background,
                "objects": [{"name": o.name, "size": o.size, "position": o.position, "style": o.style}
                            for o in self.objects]}


def object_centre(obj: Thing) -> tuple[float, float]:
    col, row = POSITIONS[obj.position]
    return GRID[col] + obj.dx, GRID[row] + obj.dy


def render(scene: Scene, size: int = IMAGE_SIZE) -> np.ndarray:
    """The scene as an (size, size, 3) uint8 RGB array."""
    big = size * SUPERSAMPLE
    canvas = Image.new("RGBA", (big, big), BACKGROUNDS[scene.background] + (255,))
    drawings = icons.icons()
    for obj in scene.objects:
        side = max(2, round(SIZES[obj.size] * obj.scale * big))
        icon = Image.fromarray(drawings[obj.name][obj.style]).resize((side, side), Image.LANCZOS)
        if obj.mirrored:
            icon = icon.transpose(Image.FLIP_LEFT_RIGHT)
        fx, fy = object_centre(obj)
        _paste_clipped(canvas, icon, round(fx * big - side / 2), round(fy * big - side / 2))
    return np.asarray(canvas.convert("RGB").resize((size, size), Image.BOX), dtype=np.uint8)


def _paste_clipped(canvas: Image.Image, icon: Image.Image, x: int, y: int) -> None:
    """alpha_composite refuses negative offsets: the part of the icon past the top or left edge is cropped."""
    left, top = max(0, -x), max(0, -y)
    canvas.alpha_composite(icon.crop((left, top, icon.width, icon.height)), (x + left, y + top))


# -- sampling ----------------------------------------------------------------------------------------

def allowed(name: str, position: str, split: str) -> bool:
    held = (name, position) in HELD_OUT
    return held if split == "heldout" else not held


def sample_object(rng: random.Random, split: str, position: str | None = None, size: str | None = None,
                  name: str | None = None) -> Thing:
    while True:
        n, p = name or rng.choice(OBJECTS), position or rng.choice(list(POSITIONS))
        if allowed(n, p, split) or (name and position):
            break
    return Thing(n, size or rng.choice(list(SIZES)), p, rng.choice(STYLES), dx=rng.uniform(-0.03, 0.03),
                 dy=rng.uniform(-0.03, 0.03), scale=rng.uniform(0.9, 1.1), mirrored=rng.random() < 0.3)


def sample_scene(rng: random.Random, split: str = "train", two_objects: float = 0.25) -> Scene:
    """One random scene; in the held-out split only the first object is a held-out pair."""
    first = sample_object(rng, split)
    objects = [first]
    if rng.random() < two_objects:
        for _ in range(20):
            second = sample_object(rng, "train")
            if (second.name != first.name and second.position != first.position
                    and _far_apart(first.position, second.position, first.size, second.size)):
                objects.append(second)
                break
    return Scene(rng.choice(list(BACKGROUNDS)), tuple(objects))


# -- captions ----------------------------------------------------------------------------------------

def _object_phrase(obj: Thing, rng: random.Random | None, with_size: bool, with_position: bool) -> str:
    pick = (lambda options: options[0]) if rng is None else rng.choice
    text = " ".join(([pick(SIZE_WORDS[obj.size])] if with_size else []) + [obj.name])
    phrase = ("an " if text[0] in "aeiou" else "a ") + text
    if with_position:
        where = pick(POSITION_PHRASES[obj.position])
        phrase += (", " + where) if where == obj.position else (" " + where)
    return phrase


def _background_phrase(name: str, rng: random.Random | None) -> str:
    pick = (lambda options: options[0]) if rng is None else rng.choice
    word = pick(BACKGROUND_WORDS.get(name, (name,)))
    return pick((f", {word} background", f" on a {word} background", f", on {word}"))


def caption(scene: Scene, rng: random.Random | None = None, complete: bool = False) -> str:
    """With an rng: varied wording, and size, position or background sometimes left out (so "a cat"
    works). Without: the canonical complete caption (what the judge prompts with)."""
    full = complete or rng is None
    keep = (lambda p: True) if full else (lambda p: rng.random() < p)
    with_size, with_position, with_background = keep(0.7), keep(0.85), keep(0.7)
    text = " and ".join(_object_phrase(o, rng, with_size, with_position) for o in scene.objects)
    if with_background:
        text += _background_phrase(scene.background, rng)
    return text


def vocabulary() -> list[str]:
    """Every word a training caption can contain, sorted."""
    phrases = [*TEMPLATE_WORDS, *OBJECTS, *BACKGROUNDS, *(w for ws in SIZE_WORDS.values() for w in ws),
               *(p for ps in POSITION_PHRASES.values() for p in ps), *(w for ws in BACKGROUND_WORDS.values() for w in ws)]
    return sorted({w for phrase in phrases for w in words(phrase)})


def dataset(n: int, seed: int = 0, split: str = "train", two_objects: float = 0.25):
    rng = random.Random(f"sdlens-objects/{split}/{seed}")
    out = []
    for _ in range(n):
        scene = sample_scene(rng, split, two_objects)
        out.append((scene, caption(scene, rng)))
    return out


def render_many(scenes, size: int = IMAGE_SIZE) -> np.ndarray:
    return np.stack([render(s, size) for s in scenes]) if scenes else np.zeros((0, size, size, 3), np.uint8)
