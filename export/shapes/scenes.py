"""A procedurally rendered, captioned world of simple shapes: the training data of the default model.

No Stable Diffusion weights can be downloaded, so sdlens trains its own small SD on pictures it
can draw itself. Each scene is one or two flat-coloured shapes on a plain background, and its
caption names everything that is drawn ("a big red circle on the left, light blue background").
Because every picture comes with its ground truth (`Scene`), a judge can later check from pixels
alone whether a generated image shows what its prompt asked for.

Some colour+shape pairs are HELD OUT: they never appear in a training picture or caption, so
generating "a red star" tests whether the model composes "red" and "star" rather than recalling
a picture it has seen.

Everything is deterministic: the same seed gives the same scenes, captions and pixels.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 64
SUPERSAMPLE = 4  # drawn at 4x and box-filtered down: smooth edges, like a photo of a shape

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 35),
    "orange": (245, 135, 20),
    "yellow": (245, 220, 35),
    "green": (35, 160, 55),
    "cyan": (40, 200, 210),
    "blue": (30, 60, 215),
    "purple": (135, 45, 190),
    "pink": (245, 125, 195),
    "brown": (125, 75, 35),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (248, 248, 248),
    "black": (18, 18, 18),
    "gray": (128, 128, 128),
    "light blue": (185, 215, 245),
    "beige": (235, 222, 190),
}
SHAPES = ("circle", "square", "triangle", "star", "heart")
SIZES = {"small": 0.26, "large": 0.44}  # object extent as a fraction of the image side

# Positions on a 3x3 grid: name -> (column, row). Centres sit at 22 %, 50 %, 78 % of the side so
# that a large shape at an edge is still whole.
POSITIONS: dict[str, tuple[int, int]] = {
    "top left": (0, 0), "top": (1, 0), "top right": (2, 0),
    "left": (0, 1), "center": (1, 1), "right": (2, 1),
    "bottom left": (0, 2), "bottom": (1, 2), "bottom right": (2, 2),
}
GRID = (0.22, 0.5, 0.78)

# Colour+shape pairs that never occur in training: each colour and each shape is still seen with
# other partners, so the model can only get these right by composing the two words.
HELD_OUT: frozenset[tuple[str, str]] = frozenset({
    ("red", "star"), ("blue", "heart"), ("green", "triangle"),
    ("yellow", "square"), ("purple", "circle"), ("orange", "star"),
})

# Caption wording. Several phrasings per attribute, so the text encoder learns words, not templates.
SIZE_WORDS = {"small": ("small", "little", "tiny"), "large": ("big", "large")}
POSITION_PHRASES = {
    "top left": ("in the top left corner", "at the top left", "top left"),
    "top": ("at the top", "at the top center", "top"),
    "top right": ("in the top right corner", "at the top right", "top right"),
    "left": ("on the left", "at the left", "left"),
    "center": ("in the center", "in the middle", "center"),
    "right": ("on the right", "at the right", "right"),
    "bottom left": ("in the bottom left corner", "at the bottom left", "bottom left"),
    "bottom": ("at the bottom", "at the bottom center", "bottom"),
    "bottom right": ("in the bottom right corner", "at the bottom right", "bottom right"),
}
BACKGROUND_WORDS = {"gray": ("gray", "grey")}
# The words the caption templates below add around the attribute words.
TEMPLATE_WORDS = ("a", "an", "and", "on", "background")


@dataclass(frozen=True)
class Shape:
    colour: str
    shape: str
    size: str
    position: str
    # Small random offsets (fractions of the side) and scale, so no two pictures are identical.
    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0


@dataclass(frozen=True)
class Scene:
    background: str
    objects: tuple[Shape, ...] = field(default_factory=tuple)

    def attributes(self) -> dict:
        """The ground truth as plain data (what a judge checks)."""
        return {"background": self.background,
                "objects": [{"colour": o.colour, "shape": o.shape, "size": o.size, "position": o.position}
                            for o in self.objects]}


# -- geometry ----------------------------------------------------------------------------------------

def _polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]] | None:
    """Outline of a shape of 'radius' r centred at (cx, cy); None for the circle (drawn as an ellipse)."""
    if shape == "circle":
        return None
    if shape == "square":
        s = r * 0.86
        return [(cx - s, cy - s), (cx + s, cy - s), (cx + s, cy + s), (cx - s, cy + s)]
    if shape == "triangle":
        # Equilateral, pointing up, centred on its bounding box so it looks centred.
        h = 2 * r * 0.93
        w = h * 2 / math.sqrt(3)
        return [(cx, cy - h / 2), (cx + w / 2, cy + h / 2), (cx - w / 2, cy + h / 2)]
    if shape == "star":
        points = []
        for k in range(10):
            radius = r if k % 2 == 0 else r * 0.42
            angle = -math.pi / 2 + k * math.pi / 5
            points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle) + r * 0.08))
        return points
    if shape == "heart":
        # The classic parametric heart, scaled to fit a box of half-width r.
        points = []
        for k in range(72):
            t = 2 * math.pi * k / 72
            x = 16 * math.sin(t) ** 3
            y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
            points.append((cx + x * r / 16.5, cy - y * r / 16.5 - r * 0.08))
        return points
    raise ValueError(f"unknown shape {shape!r}")


def object_centre(obj: Shape) -> tuple[float, float]:
    """Centre of an object as fractions of the image side (x right, y down)."""
    col, row = POSITIONS[obj.position]
    return GRID[col] + obj.dx, GRID[row] + obj.dy


def render(scene: Scene, size: int = IMAGE_SIZE) -> np.ndarray:
    """The scene as an (size, size, 3) uint8 RGB array."""
    big = size * SUPERSAMPLE
    image = Image.new("RGB", (big, big), BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        fx, fy = object_centre(obj)
        r = SIZES[obj.size] * obj.scale * big / 2
        cx, cy = fx * big, fy * big
        poly = _polygon(obj.shape, cx, cy, r)
        fill = COLOURS[obj.colour]
        if poly is None:
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
        else:
            draw.polygon(poly, fill=fill)
    return np.asarray(image.resize((size, size), Image.BOX), dtype=np.uint8)


# -- sampling ----------------------------------------------------------------------------------------

def allowed(colour: str, shape: str, split: str) -> bool:
    """Whether a colour+shape pair belongs to a split: "train" or "heldout"."""
    held = (colour, shape) in HELD_OUT
    return held if split == "heldout" else not held


def _far_apart(a: str, b: str, size_a: str, size_b: str) -> bool:
    """Two objects must not overlap: large ones need two grid cells between them in some axis."""
    (ca, ra), (cb, rb) = POSITIONS[a], POSITIONS[b]
    gap = max(abs(ca - cb), abs(ra - rb))
    return gap >= (2 if "large" in (size_a, size_b) else 1)


def sample_object(rng: random.Random, split: str, position: str | None = None,
                  size: str | None = None) -> Shape:
    while True:
        colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
        if allowed(colour, shape, split):
            break
    return Shape(colour, shape, size or rng.choice(list(SIZES)), position or rng.choice(list(POSITIONS)),
                 dx=rng.uniform(-0.03, 0.03), dy=rng.uniform(-0.03, 0.03), scale=rng.uniform(0.9, 1.1))


def sample_scene(rng: random.Random, split: str = "train", two_objects: float = 0.25) -> Scene:
    """One random scene. `two_objects` is the chance of a second, non-overlapping object; in the
    held-out split only the first object is held out (the second comes from training pairs)."""
    first = sample_object(rng, split)
    objects = [first]
    if rng.random() < two_objects:
        for _ in range(20):
            second = sample_object(rng, "train")
            if second.position != first.position and _far_apart(first.position, second.position, first.size, second.size):
                objects.append(second)
                break
    return Scene(rng.choice(list(BACKGROUNDS)), tuple(objects))


# -- captions ----------------------------------------------------------------------------------------

def _object_phrase(obj: Shape, rng: random.Random | None, with_size: bool, with_position: bool) -> str:
    pick = (lambda options: options[0]) if rng is None else rng.choice
    words = []
    if with_size:
        words.append(pick(SIZE_WORDS[obj.size]))
    words += [obj.colour, obj.shape]
    phrase = ("an " if words[0][0] in "aeiou" else "a ") + " ".join(words)
    if with_position:
        where = pick(POSITION_PHRASES[obj.position])
        # Bare position words read as "a red circle, left"; the others as "a red circle on the left".
        phrase += (", " + where) if where == obj.position else (" " + where)
    return phrase


def _background_phrase(name: str, rng: random.Random | None) -> str:
    pick = (lambda options: options[0]) if rng is None else rng.choice
    word = pick(BACKGROUND_WORDS.get(name, (name,)))
    return pick((f", {word} background", f" on a {word} background", f", on {word}"))


def caption(scene: Scene, rng: random.Random | None = None, complete: bool = False) -> str:
    """A caption naming what is drawn. With an rng, wording varies and (unless `complete`) size,
    position or background are sometimes left out, so short prompts like "a red circle" work too.
    Without an rng: the canonical, complete caption (what the judge prompts with)."""
    full = complete or rng is None
    keep = (lambda p: True) if full else (lambda p: rng.random() < p)
    with_size, with_position, with_background = keep(0.8), keep(0.85), keep(0.8)
    text = " and ".join(_object_phrase(o, rng, with_size, with_position) for o in scene.objects)
    if with_background:
        text += _background_phrase(scene.background, rng)
    return text


def words(text: str) -> list[str]:
    """The words of a caption or prompt as the vocabulary counts them: lower-case runs of letters or
    digits, in any script (the page splits prompts the same way: /[\\p{L}\\p{N}]+/gu)."""
    return re.findall(r"[^\W_]+", text.lower())


def vocabulary() -> list[str]:
    """Every word a training caption can contain, sorted: what the default model has ever read.
    (A test checks that captions use no other word.)"""
    phrases = [*TEMPLATE_WORDS, *COLOURS, *SHAPES, *BACKGROUNDS, *(w for ws in SIZE_WORDS.values() for w in ws),
               *(p for ps in POSITION_PHRASES.values() for p in ps), *(w for ws in BACKGROUND_WORDS.values() for w in ws)]
    return sorted({w for phrase in phrases for w in words(phrase)})


def dataset(n: int, seed: int = 0, split: str = "train", two_objects: float = 0.25):
    """n (scene, caption) pairs; the same seed always gives the same list."""
    rng = random.Random(f"sdlens-scenes/{split}/{seed}")
    out = []
    for _ in range(n):
        scene = sample_scene(rng, split, two_objects)
        out.append((scene, caption(scene, rng)))
    return out


def render_many(scenes, size: int = IMAGE_SIZE) -> np.ndarray:
    """(n, size, size, 3) uint8 for a list of scenes."""
    return np.stack([render(s, size) for s in scenes]) if scenes else np.zeros((0, size, size, 3), np.uint8)
