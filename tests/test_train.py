"""`python -m export train-tiny` end to end on the reduced config: train, convert, generate."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "shapes-reduced"
    run = subprocess.run([sys.executable, "-m", "export", "train-tiny", str(out), "--minutes", "0.5",
                          "--config", "reduced", "--threads", "1"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return out


def test_writes_a_diffusers_pipeline_with_extras(trained):
    from diffusers import StableDiffusionPipeline

    assert not (trained / "checkpoint").exists()
    pipe = StableDiffusionPipeline.from_pretrained(trained, local_files_only=True)
    assert type(pipe.text_encoder).__name__ == "CLIPTextModel"
    assert type(pipe.unet).__name__ == "UNet2DConditionModel" and type(pipe.vae).__name__ == "AutoencoderKL"
    assert pipe.tokenizer.vocab_size == 49408
    assert pipe.scheduler.config.beta_schedule == "scaled_linear" and pipe.scheduler.config.prediction_type == "epsilon"
    extras = json.loads((trained / "sdlens_extras.json").read_text())
    assert extras["defaults"] == {"steps": 25, "guidance": 7.5, "scheduler": "ddim"}
    assert extras["starter_prompts"] and all(len(pair) == 2 for pair in extras["prompt_pairs"])
    from export.shapes import scenes

    assert {tuple(pair) for pair in extras["held_out_pairs"]} == set(scenes.HELD_OUT)
    report = json.loads((trained / "sdlens_train.json").read_text())
    assert report["vae"]["steps"] >= 4 and report["unet"]["steps"] >= 4


def test_converts_and_generates(trained, tmp_path):
    from export.convert import convert

    model_dir = tmp_path / "shapes"
    manifest = convert(str(trained), model_dir, ["fp32"], quiet=True)
    assert manifest["starter_prompts"] and manifest["prompt_pairs"] and manifest["defaults"]["steps"] == 25
    assert manifest["held_out_pairs"]  # carried through the converter for the page's lesson
    assert manifest["vae_scale_factor"] == 8 and manifest["defaults"]["width"] == 64
    png = tmp_path / "out.png"
    run = subprocess.run([sys.executable, "-m", "sdlens", "generate", "a red circle on the left", "--model",
                          str(model_dir), "--steps", "3", "--out", str(png)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    from PIL import Image

    assert Image.open(png).size == (64, 64)


def test_resuming_gives_the_same_model_as_not_stopping(tmp_path, monkeypatch):
    """Stop in the middle of the UNet stage, run again: the weights match an uninterrupted run."""
    import torch

    from export.shapes import train

    torch.set_num_threads(1)
    monkeypatch.setattr(train, "CHECKPOINT_EVERY_S", 0)
    fixed = dict(minutes=5, config="reduced", vae_steps=6, unet_steps=8, quiet=True, threads=1)
    train.train_tiny(tmp_path / "straight", **fixed)

    original = train.Trainer._unet_step
    calls = {"n": 0}

    def interrupting(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3 + 5:  # 4 timed planning steps, then 3 real ones, then stop
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(train.Trainer, "_unet_step", interrupting)
    with pytest.raises(KeyboardInterrupt):
        train.train_tiny(tmp_path / "resumed", **fixed)
    assert (tmp_path / "resumed" / "checkpoint" / "state.pt").is_file()
    monkeypatch.setattr(train.Trainer, "_unet_step", original)
    train.train_tiny(tmp_path / "resumed", **fixed)

    from safetensors.numpy import load_file

    for part in ("unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors",
                 "vae/diffusion_pytorch_model.safetensors"):
        a, b = load_file(tmp_path / "straight" / part), load_file(tmp_path / "resumed" / part)
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{part} {key}")


def test_vae_edge_term_punishes_blurred_outlines_not_colour_shifts():
    import torch

    from export.shapes import scenes
    from export.shapes.train import _to_tensor, vae_loss

    x = _to_tensor(scenes.render(scenes.Scene("white", (scenes.Shape("red", "star", "small", "center"),)))[None])
    shifted = x + 0.1  # an even colour error: no outline is wrong
    blurred = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    assert vae_loss(shifted, x, 1.0) - vae_loss(shifted, x, 0.0) < 1e-6
    assert vae_loss(blurred, x, 1.0) - vae_loss(blurred, x, 0.0) > 0.005
    assert vae_loss(x, x, 1.0) == 0
