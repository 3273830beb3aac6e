"""The fast decoder (TAESD at full size) as the final picture's decoder: what it draws, that it
says so, that a redraw by the VAE is the VAE's own run, and the messages for what cannot be done."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest

from sdlens.cpython.runtime import OnnxRuntime
from sdlens.errors import SdlensError
from sdlens.fast_decoder import check_decoder, draws_full_size
from sdlens.model import Model
from sdlens.pipeline import Pipeline, Settings

SETTINGS = dict(prompt="a red circle on the left", seed=3, steps=3, guidance=7.5, scheduler="ddim")


@pytest.fixture(scope="module")
def model_dir(taesd_models_dir):
    return taesd_models_dir / "tiny-taesd"


def test_decoder_setting_values():
    assert [check_decoder(v) for v in (None, "", "vae", " VAE ", "fast", "TAESD")] == \
        ["vae", "vae", "vae", "vae", "fast", "fast"]
    with pytest.raises(SdlensError, match=r"^decoder must be vae .* or fast .*; got 'quick'$"):
        check_decoder("quick")


def test_the_fast_decoder_draws_taesd_of_the_final_latent_at_full_size(model_dir):
    model = Model.from_dir(str(model_dir))
    assert draws_full_size(model.manifest)
    pipeline = Pipeline(model, OnnxRuntime())
    vae = pipeline.generate(Settings(**SETTINGS))
    fast = pipeline.generate(Settings(**SETTINGS, decoder="fast"))
    assert (vae.decoder, fast.decoder) == ("vae", "fast")
    np.testing.assert_array_equal(fast.latents, vae.latents)  # the decoder changes the picture only
    assert (fast.width, fast.height) == (64, 64) and len(fast.rgb) == 64 * 64 * 3
    # TAESD's own graph on the final latent (its scaling factor is 1), to pixels as the VAE's output
    entry = model.manifest["components"]["preview_decoder"]["variants"]["fp32"]
    session = ort.InferenceSession(str(model_dir / entry["files"][0]["path"]), providers=["CPUExecutionProvider"])
    (image,) = session.run(None, {"latent_sample": vae.latents})
    assert fast.rgb == OnnxRuntime().to_rgb8(image)
    assert fast.rgb != vae.rgb
    # redrawing the fast run's latent with the VAE is the VAE's run, to the byte
    assert pipeline.runtime.to_rgb8(pipeline.decode(fast.latents)) == vae.rgb


def test_a_model_without_a_full_size_fast_decoder_says_so(tiny_model_dir, model_dir):
    pipeline = Pipeline(Model.from_dir(str(tiny_model_dir)), OnnxRuntime())
    with pytest.raises(SdlensError, match=r"^decoder: model .* has no fast decoder \(TAESD\) for full-size pictures; "
                                          r"use the VAE \(decoder vae\), or export the model again with --preview-decoder$"):
        pipeline.generate(Settings(**SETTINGS, decoder="fast"))
    # an older export averaged the latent inside the graph: it draws small previews only
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["components"]["preview_decoder"]["input_pool"] = 2
    assert not draws_full_size(manifest)


def test_cli_decoder_option(model_dir, tmp_path):
    def generate(*extra):
        return subprocess.run([sys.executable, "-m", "sdlens", "generate", SETTINGS["prompt"], "--model", str(model_dir),
                               "--steps", "2", "--out", str(tmp_path / "out.png"), *extra],
                              capture_output=True, text=True)

    fast = generate("--decoder", "fast")
    assert fast.returncode == 0, fast.stderr
    assert "decode (the fast decoder, TAESD)" in fast.stdout
    bad = generate("--decoder", "quick")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: decoder must be vae (the model's own decoder) or fast (TAESD, quicker and close); got 'quick'"
