"""`python -m export judge-objects MODEL`: does a generated picture show the prompted object, in the
prompted place?

The judge looks at pixels only. It is a small CNN with two heads (which object; which of the nine
places), trained here on the world's own rendered pictures (scenes.render: every object, emoji
set, size, place and background, held-out pairs included: the judge may know what a cat in the
top left looks like, only the model under test may not), half of them blurred, because
generated pictures are never crisp. It has never seen a generated picture. Deterministic, and
cached under export/build/judge/.

It prompts with the canonical caption of one-object scenes: every object x `seeds` (each object
in a random training place, size and background), and every held-out object+place pair x
`seeds`; it reports per object, for all one-object prompts, and for the held-out pairs.

MODEL is a trained diffusers folder (what train-tiny writes at the end) or a run's folder with a
checkpoint in it (checkpoint/state.pt at the UNet stage: its EMA weights are judged, mid-run).
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

import numpy as np

from ..shapes.scenes import POSITIONS
from . import icons, scenes

INPUT = 32  # the classifier reads pictures downsampled to this side (fast; emoji stay distinct)
CACHE = Path(__file__).resolve().parent.parent / "build" / "judge"
PLACES = tuple(POSITIONS)


class ObjectClassifier:
    VERSION = 1

    def __init__(self, net):
        self.net = net

    @staticmethod
    def _net():
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(
                    nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
                    nn.MaxPool2d(2),  # 16
                    nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 8
                    nn.Conv2d(64, 96, 3, padding=1), nn.ReLU(),
                )
                # Which object: wherever it is (global pooling). Where: from the 8x8 map itself.
                self.what = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(96, len(scenes.OBJECTS)))
                self.where = nn.Sequential(nn.Conv2d(96, 8, 1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, len(PLACES)))

            def forward(self, x):
                h = self.body(x)
                return self.what(h), self.where(h)

        return Net()

    @staticmethod
    def prepare(images: np.ndarray):
        """(n, h, w, 3) uint8 -> (n, 3, INPUT, INPUT) float in [-1, 1]."""
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        return F.interpolate(x, size=(INPUT, INPUT), mode="area") if x.shape[-1] != INPUT else x

    @classmethod
    def training_data(cls, n: int, seed: int):
        from PIL import Image, ImageFilter

        rng = random.Random(f"objects-judge/{seed}")
        images, what, where = [], [], []
        for _ in range(n):
            obj = scenes.sample_object(rng, "train", position=rng.choice(PLACES), name=rng.choice(scenes.OBJECTS))
            image = scenes.render(scenes.Scene(rng.choice(list(scenes.BACKGROUNDS)), (obj,)))
            if rng.random() < 0.5:
                image = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5))))
            images.append(image)
            what.append(scenes.OBJECTS.index(obj.name))
            where.append(PLACES.index(obj.position))
        return np.stack(images), np.array(what), np.array(where)

    @classmethod
    def train(cls, n: int = 6000, epochs: int = 6, seed: int = 0) -> "ObjectClassifier":
        import torch
        import torch.nn.functional as F

        torch.manual_seed(seed)
        images, what, where = cls.training_data(n, seed)
        x, y_what, y_where = cls.prepare(images), torch.from_numpy(what), torch.from_numpy(where)
        net = cls._net()
        opt = torch.optim.Adam(net.parameters(), 2e-3)
        g = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=g)
            for i in range(0, len(x), 64):
                idx = order[i:i + 64]
                # Light noise: generated pictures are grainier than rendered ones.
                noisy = x[idx] + 0.08 * torch.randn(x[idx].shape, generator=g)
                a, b = net(noisy)
                loss = F.cross_entropy(a, y_what[idx]) + F.cross_entropy(b, y_where[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        return cls(net.eval())

    @classmethod
    def recipe(cls) -> str:
        return hashlib.sha256(json.dumps([cls.VERSION, scenes.OBJECTS, scenes.STYLES, scenes.SIZES, INPUT,
                                          list(scenes.BACKGROUNDS.values()), scenes.IMAGE_SIZE]).encode()).hexdigest()[:12]

    @classmethod
    def load_or_train(cls, cache: Path | None = CACHE, **train_args) -> "ObjectClassifier":
        import torch

        path = cache / f"object_classifier_{cls.recipe()}.pt" if cache else None
        if path is not None and path.is_file() and not train_args:
            net = cls._net()
            net.load_state_dict(torch.load(path))
            return cls(net.eval())
        clf = cls.train(**train_args)
        if path is not None and not train_args:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(clf.net.state_dict(), path)
        return clf

    def read(self, images: np.ndarray) -> list[tuple[str, str]]:
        """(object, place) the judge sees in each picture."""
        import torch

        with torch.no_grad():
            a, b = self.net(self.prepare(images))
        return [(scenes.OBJECTS[i], PLACES[j]) for i, j in zip(a.argmax(1).tolist(), b.argmax(1).tolist())]


# -- prompts and scores ---------------------------------------------------------------------------

def prompt_set(seeds: int = 4, seed: int = 12345) -> dict[str, list[tuple[scenes.Scene, str]]]:
    """{"objects": every object x seeds (training places), "heldout": every held-out pair x seeds}."""
    rng = random.Random(f"objects-judge-prompts/{seed}")
    sets: dict[str, list] = {"objects": [], "heldout": []}
    for name in scenes.OBJECTS:
        for _ in range(seeds):
            obj = scenes.sample_object(rng, "train", name=name)
            sets["objects"].append(scenes.Scene(rng.choice(list(scenes.BACKGROUNDS)), (obj,)))
    for name, place in sorted(scenes.HELD_OUT):
        for _ in range(seeds):
            obj = scenes.sample_object(rng, "heldout", name=name, position=place)
            sets["heldout"].append(scenes.Scene(rng.choice(list(scenes.BACKGROUNDS)), (obj,)))
    return {k: [(s, scenes.caption(s)) for s in v] for k, v in sets.items()}


def score(readings: list[tuple[str, str]], truths: list[scenes.Scene]) -> dict:
    """Accuracy of object, place and both, overall and per object."""
    marks = [(got[0] == t.objects[0].name, got[1] == t.objects[0].position) for got, t in zip(readings, truths)]

    def acc(ms):
        n = max(1, len(ms))
        return {"object": sum(a for a, _ in ms) / n, "place": sum(b for _, b in ms) / n,
                "both": sum(a and b for a, b in ms) / n, "n": len(ms)}

    per_object = {name: acc([m for m, t in zip(marks, truths) if t.objects[0].name == name])
                  for name in scenes.OBJECTS if any(t.objects[0].name == name for t in truths)}
    return {"all": acc(marks), "per_object": per_object}


# -- generating from a model ------------------------------------------------------------------------

def load_pipeline(model: Path):
    """A diffusers pipeline from a finished run's folder, a run's mid-run checkpoint (EMA weights), or
    a weights-only snapshot file."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    from transformers import CLIPTokenizer

    from sdlens.errors import SdlensError

    from ..shapes.model import build_text_encoder, build_unet, build_vae
    from ..tiny import SD_SCHEDULER_CONFIG
    from .model import CONFIGS

    model = Path(model)
    if model.suffix == ".safetensors":  # a weights-only snapshot (snapshot.py)
        from .snapshot import pipeline

        return pipeline(model)
    if (model / "model_index.json").is_file():
        return StableDiffusionPipeline.from_pretrained(model, local_files_only=True, safety_checker=None)
    ckpt = model / "checkpoint"
    if not (ckpt / "state.pt").is_file():
        raise SdlensError(f"{model} is neither a trained pipeline (model_index.json) nor a run with a checkpoint")
    import torch

    state = torch.load(ckpt / "state.pt", weights_only=False)
    if state["stage"] != "unet" or "ema_unet" not in state:
        raise SdlensError(f"{model}'s checkpoint is still at the VAE stage: nothing to judge yet")
    identity = json.loads((ckpt / "config.json").read_text())
    cfg = CONFIGS[identity["config"]["name"]]
    vae, unet, te = build_vae(cfg), build_unet(cfg), build_text_encoder(cfg)
    vae.load_state_dict(state["vae"])
    unet.load_state_dict(state["ema_unet"])
    te.load_state_dict(state["ema_text_encoder"])
    latents = torch.load(ckpt / "latents.pt")
    vae.register_to_config(scaling_factor=float(1.0 / latents.std()))
    pipe = StableDiffusionPipeline(unet=unet.eval(), vae=vae.eval(), text_encoder=te.eval(),
                                   tokenizer=CLIPTokenizer.from_pretrained(ckpt / "tokenizer"),
                                   scheduler=DDIMScheduler.from_config(SD_SCHEDULER_CONFIG), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.sdlens_step = state["step"]
    return pipe


def generate(pipe, prompts: list[str], steps: int = 25, guidance: float = 7.5, batch: int = 32) -> np.ndarray:
    """(n, h, w, 3) uint8; prompt i uses seed i (so a rerun gives the same pictures)."""
    import torch

    out = []
    for i in range(0, len(prompts), batch):
        chunk = prompts[i:i + batch]
        gens = [torch.Generator().manual_seed(i + k) for k in range(len(chunk))]
        with torch.no_grad():
            images = pipe(chunk, num_inference_steps=steps, guidance_scale=guidance, generator=gens,
                          output_type="np").images
        out.append((np.clip(images, 0, 1) * 255).round().astype(np.uint8))
    return np.concatenate(out)


def judge(model: Path, seeds: int = 4, steps: int = 25, guidance: float = 7.5, grid: Path | None = None) -> dict:
    classifier = ObjectClassifier.load_or_train()
    pipe = load_pipeline(model)
    results: dict = {"steps": steps, "guidance": guidance, "seeds": seeds,
                     "checkpoint_step": getattr(pipe, "sdlens_step", None)}
    pictures = {}
    for split, items in prompt_set(seeds).items():
        images = generate(pipe, [p for _, p in items], steps, guidance)
        pictures[split] = images
        results[split] = score(classifier.read(images), [s for s, _ in items])
        print(f"judged {split}: {len(items)} pictures", file=sys.stderr, flush=True)
    if grid is not None:
        save_grid(pictures["objects"], seeds, grid)
    return results


def save_grid(images: np.ndarray, seeds: int, path: Path) -> None:
    """One row per object (in scenes.OBJECTS order), one column per seed, drawn at 2x."""
    from PIL import Image

    rows = [np.concatenate(list(images[r * seeds:(r + 1) * seeds]), axis=1) for r in range(len(images) // seeds)]
    sheet = np.concatenate(rows, axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).resize((sheet.shape[1] * 2, sheet.shape[0] * 2), Image.NEAREST).save(path)


def format_table(results: dict) -> str:
    lines = [f"{'':<14} {'object':>8} {'place':>8} {'both':>8} {'n':>4}"]
    for split in ("objects", "heldout"):
        a = results[split]["all"]
        lines.append(f"{split + ' (all)':<14} {100 * a['object']:>7.0f}% {100 * a['place']:>7.0f}% "
                     f"{100 * a['both']:>7.0f}% {a['n']:>4}")
    lines.append("per object (one-object prompts):")
    for name, a in results["objects"]["per_object"].items():
        lines.append(f"  {name:<12} {100 * a['object']:>7.0f}% {100 * a['place']:>7.0f}% {100 * a['both']:>7.0f}% "
                     f"{a['n']:>4}")
    return "\n".join(lines)


def chance() -> dict[str, float]:
    return {"object": 1 / len(scenes.OBJECTS), "place": 1 / len(PLACES)}


