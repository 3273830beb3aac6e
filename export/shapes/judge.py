"""`python -m export judge MODEL`: does a generated picture show what its prompt asked for?

An independent judge that looks at pixels only, and knows nothing about the model under test:

* background: the median colour of the picture's border, nearest of the background palette;
* foreground: pixels far from that background colour (small specks dropped);
* colour: the median foreground colour (the core of the shape, not its blended edge), nearest
  of the object palette;
* position: the foreground centroid on the 3x3 grid of `scenes.POSITIONS`;
* size: the foreground's extent, small or large;
* shape: a tiny CNN that reads the foreground mask (cropped to its bounding box, so it sees form,
  not colour or place), trained here on the renderer's own ground-truth pictures; deterministic,
  and cached under build/judge/.

It prompts with the canonical caption of scenes drawn from (a) the training colour+shape pairs
and (b) the held-out pairs, generates with the sdlens CPython pipeline on an exported model
folder, and prints the accuracy per attribute and guidance scale.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import scenes

MASK_SIZE = 24
FOREGROUND_DISTANCE = 50.0  # RGB distance from the background that counts as "object"
ATTRIBUTES = ("colour", "shape", "position", "size", "background")
CACHE = Path(__file__).resolve().parent.parent / "build" / "judge"


def _nearest(rgb: np.ndarray, palette: dict[str, tuple[int, int, int]]) -> str:
    names = list(palette)
    d = np.linalg.norm(np.array([palette[n] for n in names], np.float32) - rgb[None].astype(np.float32), axis=1)
    return names[int(np.argmin(d))]


@dataclass
class Reading:
    """What the judge sees in one picture (None where there is no foreground)."""
    background: str
    colour: str | None
    position: str | None
    size: str | None
    shape: str | None


def foreground(image: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
    """(background name, boolean foreground mask, soft mask in [0, 1]) of an (h, w, 3) uint8 picture."""
    from scipy import ndimage

    img = image.astype(np.float32)
    border = np.concatenate([img[:2].reshape(-1, 3), img[-2:].reshape(-1, 3),
                             img[:, :2].reshape(-1, 3), img[:, -2:].reshape(-1, 3)])
    bg_rgb = np.median(border, axis=0)
    distance = np.linalg.norm(img - bg_rgb, axis=2)
    mask = distance > FOREGROUND_DISTANCE
    labels, n = ndimage.label(mask)
    if n > 1:
        sizes = ndimage.sum(mask, labels, range(1, n + 1))
        keep = np.flatnonzero(sizes >= max(6, 0.25 * sizes.max())) + 1
        mask = np.isin(labels, keep)
    soft = np.clip(distance / max(40.0, float(np.percentile(distance[mask], 90)) if mask.any() else 1.0), 0, 1)
    return _nearest(bg_rgb, scenes.BACKGROUNDS), mask, soft * mask


def mask_crop(soft: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The foreground mask cut to its bounding box (square, centred) and resized to MASK_SIZE."""
    from PIL import Image

    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return np.zeros((MASK_SIZE, MASK_SIZE), np.float32)
    cy, cx = (ys.min() + ys.max() + 1) / 2, (xs.min() + xs.max() + 1) / 2
    half = max(ys.max() + 1 - ys.min(), xs.max() + 1 - xs.min()) / 2 + 1
    pad = max(soft.shape)  # PIL's box must lie inside the picture; shapes at an edge need margin
    padded = np.pad(soft, pad)
    box = (cx - half + pad, cy - half + pad, cx + half + pad, cy + half + pad)
    pic = Image.fromarray((padded * 255).astype(np.uint8)).resize((MASK_SIZE, MASK_SIZE), Image.BILINEAR, box=box)
    return np.asarray(pic, np.float32) / 255.0


def _grid_index(fraction: float) -> int:
    return 0 if fraction < 0.36 else (1 if fraction < 0.64 else 2)


def read_picture(image: np.ndarray, classifier) -> Reading:
    background, mask, soft = foreground(image)
    if mask.sum() < 6:
        return Reading(background, None, None, None, None)
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    core = image[mask].astype(np.float32)
    colour = _nearest(np.median(core, axis=0), scenes.COLOURS)
    col, row = _grid_index((xs.mean() + 0.5) / w), _grid_index((ys.mean() + 0.5) / h)
    position = next(name for name, cell in scenes.POSITIONS.items() if cell == (col, row))
    extent = max(xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()) / w
    size = "small" if extent < (scenes.SIZES["small"] + scenes.SIZES["large"]) / 2 else "large"
    shape = classifier.predict([mask_crop(soft, mask)])[0]
    return Reading(background, colour, position, size, shape)


# -- the shape classifier -------------------------------------------------------------------------

class ShapeClassifier:
    """A small CNN over MASK_SIZE x MASK_SIZE foreground masks. Trained on renderer pictures of
    single shapes in every colour, size, position and background (held-out pairs included: the
    judge may know what a red star looks like, only the model under test may not), half of them
    slightly blurred."""

    VERSION = 2

    def __init__(self, net):
        self.net = net

    @staticmethod
    def _net():
        import torch.nn as nn

        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, len(scenes.SHAPES)),
        )

    @classmethod
    def training_data(cls, n: int, seed: int):
        from PIL import Image, ImageFilter

        rng = random.Random(f"judge/{seed}")
        masks, labels = [], []
        for _ in range(n):
            obj = scenes.Shape(rng.choice(list(scenes.COLOURS)), rng.choice(scenes.SHAPES), rng.choice(list(scenes.SIZES)),
                               rng.choice(list(scenes.POSITIONS)), rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03),
                               rng.uniform(0.85, 1.15))
            image = scenes.render(scenes.Scene(rng.choice(list(scenes.BACKGROUNDS)), (obj,)))
            if rng.random() < 0.5:
                # Generated pictures are never crisp: a VAE at x8 softens corners and points. A
                # judge that only knows sharp outlines calls a slightly soft star a circle.
                image = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5))))
            _, mask, soft = foreground(image)
            masks.append(mask_crop(soft, mask))
            labels.append(scenes.SHAPES.index(obj.shape))
        return np.stack(masks), np.array(labels)

    @classmethod
    def train(cls, n: int = 4000, epochs: int = 8, seed: int = 0) -> "ShapeClassifier":
        import torch

        torch.manual_seed(seed)
        x, y = cls.training_data(n, seed)
        x = torch.from_numpy(x).unsqueeze(1)
        y = torch.from_numpy(y)
        net = cls._net()
        opt = torch.optim.Adam(net.parameters(), 3e-3)
        g = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=g)
            for i in range(0, len(x), 64):
                idx = order[i:i + 64]
                # Light noise on the masks: generated shapes are never as clean as rendered ones.
                noisy = (x[idx] + 0.1 * torch.randn(x[idx].shape, generator=g)).clamp(0, 1)
                loss = torch.nn.functional.cross_entropy(net(noisy), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        return cls(net.eval())

    @classmethod
    def load_or_train(cls, cache: Path | None = CACHE) -> "ShapeClassifier":
        """The cached classifier if its recipe is unchanged, else a freshly trained one (then cached)."""
        import torch

        recipe = hashlib.sha256(json.dumps([cls.VERSION, scenes.SIZES, scenes.SHAPES, MASK_SIZE,
                                            FOREGROUND_DISTANCE, scenes.IMAGE_SIZE]).encode()).hexdigest()[:12]
        path = cache / f"shape_classifier_{recipe}.pt" if cache else None
        if path is not None and path.is_file():
            net = cls._net()
            net.load_state_dict(torch.load(path))
            return cls(net.eval())
        clf = cls.train()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(clf.net.state_dict(), path)
        return clf

    def predict(self, masks) -> list[str]:
        import torch

        with torch.no_grad():
            logits = self.net(torch.from_numpy(np.stack(masks)).float().unsqueeze(1))
        return [scenes.SHAPES[i] for i in logits.argmax(1).tolist()]


# -- scoring -------------------------------------------------------------------------------------

def score(reading: Reading, truth: scenes.Scene) -> dict[str, bool]:
    obj = truth.objects[0]
    got = {"colour": reading.colour, "shape": reading.shape, "position": reading.position, "size": reading.size}
    marks = {k: got[k] == getattr(obj, k) for k in got}
    marks["background"] = reading.background == truth.background
    return marks


def prompt_set(n: int, split: str, seed: int = 12345) -> list[tuple[scenes.Scene, str]]:
    """n single-object scenes of a split, each with its canonical, complete caption."""
    rng = random.Random(f"judge-prompts/{split}/{seed}")
    out = []
    for _ in range(n):
        scene = scenes.Scene(rng.choice(list(scenes.BACKGROUNDS)), (scenes.sample_object(rng, split),))
        out.append((scene, scenes.caption(scene)))
    return out


def accuracy(marks: list[dict[str, bool]]) -> dict[str, float]:
    out = {a: sum(m[a] for m in marks) / max(1, len(marks)) for a in ATTRIBUTES}
    out["all"] = sum(all(m.values()) for m in marks) / max(1, len(marks))
    return out


def judge_model(model_dir: str, prompts: int = 200, steps: int = 25, guidances=(1.0, 3.0, 7.5),
                scheduler: str = "ddim", variant: str = "fp32", threads: int | None = 1,
                grid: Path | None = None, progress: bool = True) -> dict:
    """Generate and score; returns {"train"|"heldout": {guidance: {attribute: accuracy}}}."""
    from tqdm.auto import tqdm

    from sdlens.cpython.runtime import OnnxRuntime
    from sdlens.model import Model
    from sdlens.pipeline import Pipeline, Settings

    classifier = ShapeClassifier.load_or_train()
    pipeline = Pipeline(Model.from_dir(model_dir, variant=variant), OnnxRuntime(threads=threads))
    results: dict = {}
    pictures: dict = {}
    sets = {"train": prompt_set(prompts, "train"), "heldout": prompt_set(prompts, "heldout")}
    total = len(sets) * len(guidances) * prompts
    with tqdm(total=total, desc="judge", unit="img", disable=not progress, file=sys.stderr, dynamic_ncols=True) as bar:
        for split, items in sets.items():
            results[split] = {}
            for guidance in guidances:
                marks = []
                for i, (scene, prompt) in enumerate(items):
                    r = pipeline.generate(Settings(prompt=prompt, seed=i, steps=steps, guidance=guidance,
                                                   scheduler=scheduler))
                    image = np.frombuffer(r.rgb, np.uint8).reshape(r.height, r.width, 3)
                    marks.append(score(read_picture(image, classifier), scene))
                    if i < 8:
                        pictures.setdefault(split, {}).setdefault(guidance, []).append(image)
                    bar.update(1)
                results[split][guidance] = accuracy(marks)
    if grid is not None:
        save_grid(pictures, sets, guidances, grid)
    return results


def save_grid(pictures: dict, sets: dict, guidances, path: Path) -> None:
    """One row per (split, guidance), first 8 prompts; the prompts go to a .txt beside it."""
    from PIL import Image

    rows = [np.concatenate(pictures[s][g], axis=1) for s in pictures for g in guidances]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).resize(
        (rows[0].shape[1] * 2, len(rows) * rows[0].shape[0] * 2), Image.NEAREST).save(path)
    lines = [f"rows: {', '.join(f'{s} g={g}' for s in pictures for g in guidances)}"]
    for s in pictures:
        lines += [f"{s} {i}: {p}" for i, (_, p) in enumerate(sets[s][:8])]
    path.with_suffix(".txt").write_text("\n".join(lines) + "\n")


def format_table(results: dict) -> str:
    head = f"{'set':<8} {'guidance':>8} " + " ".join(f"{a:>10}" for a in (*ATTRIBUTES, "all"))
    lines = [head, "-" * len(head)]
    for split, per_guidance in results.items():
        for guidance, acc in per_guidance.items():
            lines.append(f"{split:<8} {guidance:>8g} " + " ".join(f"{100 * acc[a]:>9.1f}%" for a in (*ATTRIBUTES, "all")))
    return "\n".join(lines)


def chance() -> dict[str, float]:
    """What guessing scores, for comparison."""
    return {"colour": 1 / len(scenes.COLOURS), "shape": 1 / len(scenes.SHAPES), "position": 1 / len(scenes.POSITIONS),
            "size": 1 / len(scenes.SIZES), "background": 1 / len(scenes.BACKGROUNDS)}
