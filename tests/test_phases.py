"""The long parts a run announces as they begin (Pipeline.generate's on_phase), which the page's
progress line names with their seconds ticking: the text encoder, each UNet call (with its step),
and the final decode."""

from __future__ import annotations

from sdlens.cpython.runtime import OnnxRuntime
from sdlens.model import Model
from sdlens.pipeline import Pipeline, Settings


def test_each_long_part_is_announced_in_order(tiny_model_dir):
    pipeline = Pipeline(Model.from_dir(str(tiny_model_dir)), OnnxRuntime())
    said = []
    pipeline.generate(Settings(prompt="a red circle", seed=1, steps=3, scheduler="heun", guidance=7.5),
                      on_phase=lambda name, call=None: said.append((name, call and (call.step, call.part, call.parts))))
    unet = [where for name, where in said if name == "unet"]
    assert said[0] == ("text", None) and said[-1] == ("decode", None)
    # Heun: a trial call and a correction in every step but the last
    assert unet == [(0, 0, 2), (0, 1, 2), (1, 0, 2), (1, 1, 2), (2, 0, 1)]
