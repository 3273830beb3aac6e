"""What the trainer needs to know about a world: how to draw and caption its scenes, the model
configs that suit it, and what the app shows next to the model (`extras`). The trainer (train.py)
is the same for every world; `WORLDS` names them for `python -m export train-tiny --world`."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from . import scenes
from .model import CONFIGS, ModelConfig


@dataclass(frozen=True)
class World:
    name: str
    # A module with sample_scene(rng, split), render_many(scenes), dataset(n, seed) and caption(scene, rng).
    scenes: ModuleType
    extras: Callable[[int], dict]  # scene count -> sdlens_extras.json
    configs: dict[str, ModelConfig]
    # Train the VAE and UNet forward passes under bf16 autocast (losses and weights stay fp32):
    # 1.76x faster per step on this CPU, which a world whose model is bigger than shapes' needs.
    bf16_autocast: bool = False


def _shapes_extras(scene_count: int) -> dict:
    from .train import extras  # train imports this module

    return extras(scene_count)


SHAPES = World("shapes", scenes, _shapes_extras, CONFIGS)


def world(name: str) -> World:
    """A world by name: "shapes" (the default model's) or "objects" (everyday-object emoji)."""
    from sdlens.errors import SdlensError

    if name == "shapes":
        return SHAPES
    if name == "objects":
        from ..objects.world import OBJECTS

        return OBJECTS
    raise SdlensError(f"unknown world {name!r}; choose shapes or objects")
