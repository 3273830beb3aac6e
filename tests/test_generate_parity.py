"""End to end: sdlens on the exported tiny model equals diffusers' StableDiffusionPipeline on the
diffusers folder it came from: same prompt, seed, scheduler, steps and guidance."""

import numpy as np
import pytest
import torch

from sdlens.cpython.runtime import OnnxRuntime
from sdlens.errors import SdlensError
from sdlens.model import Model
from sdlens.pipeline import Pipeline, Settings

from sdlens.schedulers import DIFFUSERS_CLASSES, KARRAS_SCHEDULERS

DIFFUSERS_SCHEDULERS = {name: cls for cls, name in DIFFUSERS_CLASSES.items()}
#: the first five, checked with every guidance/negative combination
CLASSIC = ["ddim", "euler", "euler_a", "dpmpp_2m", "lms"]
#: the later ones (and Karras sigmas), each with guidance off, and on with a negative prompt
NEWER = ["pndm", "heun", "unipc", "lcm", "ddpm"]
STEPS = 8
SEED = 42
PROMPT = "a big red circle on the left, light blue background"
# SD 1.5's own scheduler_config.json (runwayml/stable-diffusion-v1-5)
SD15_PNDM_CONFIG = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}


def diffusers_pipeline(pipeline_class, folder):
    """A diffusers pipeline class loaded from `folder`, with the fast tokenizer sdlens implements."""
    from transformers import CLIPTokenizerFast

    pipe = pipeline_class.from_pretrained(folder, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    # sdlens implements the fast tokenizer (tokenizer.json); the slow one may differ on odd unicode.
    pipe.tokenizer = CLIPTokenizerFast.from_pretrained(folder / "tokenizer")
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def reference_pipe(tiny_pipeline_dir):
    from diffusers import StableDiffusionPipeline

    return diffusers_pipeline(StableDiffusionPipeline, tiny_pipeline_dir)


@pytest.fixture(scope="module")
def ours(tiny_model_dir):
    return Pipeline(Model.from_dir(str(tiny_model_dir)), OnnxRuntime())


def diffusers_generate(pipe, scheduler, prompt, negative, guidance, karras=False, steps=STEPS, seed=SEED):
    import diffusers

    config = dict(pipe.scheduler.config, use_karras_sigmas=True) if karras else pipe.scheduler.config
    pipe.scheduler = getattr(diffusers, DIFFUSERS_SCHEDULERS[scheduler]).from_config(config)
    with torch.no_grad():
        latents = pipe(prompt, negative_prompt=negative, num_inference_steps=steps, guidance_scale=guidance,
                       generator=torch.Generator("cpu").manual_seed(seed), output_type="latent").images
        image = pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample
    return latents.numpy(), (image / 2 + 0.5).clamp(0, 1).numpy()


@pytest.mark.parametrize("negative", [None, "blurry, low quality"])
@pytest.mark.parametrize("guidance", [1.0, 7.5])
@pytest.mark.parametrize("scheduler", CLASSIC)
def test_same_latents_and_image_as_diffusers(reference_pipe, ours, scheduler, guidance, negative):
    check_same_as_diffusers(reference_pipe, ours, scheduler, guidance, negative)


@pytest.mark.parametrize("guidance, negative", [(1.0, None), (7.5, "blurry, low quality")])
@pytest.mark.parametrize("scheduler", NEWER)
def test_newer_schedulers_same_as_diffusers(reference_pipe, ours, scheduler, guidance, negative):
    check_same_as_diffusers(reference_pipe, ours, scheduler, guidance, negative)


@pytest.mark.parametrize("scheduler", KARRAS_SCHEDULERS)
def test_karras_same_as_diffusers(reference_pipe, ours, scheduler):
    check_same_as_diffusers(reference_pipe, ours, scheduler, 7.5, "blurry, low quality", karras=True)


def check_same_as_diffusers(reference_pipe, ours, scheduler, guidance, negative, karras=False):
    ref_latents, ref_image = diffusers_generate(reference_pipe, scheduler, PROMPT, negative, guidance, karras)
    calls = []
    result = ours.generate(Settings(prompt=PROMPT, negative=negative or "", seed=SEED, steps=STEPS,
                                    guidance=guidance, scheduler=scheduler, karras=karras or None),
                           on_step=calls.append)
    assert result.karras == karras
    # one trace entry per UNet call: Heun twice per step but the last; PNDM here (the tiny config
    # has no skip_prk_steps, so diffusers' default) four in each of its three Runge-Kutta steps
    expected_calls = {"heun": 2 * STEPS - 1, "pndm": STEPS + 9}.get(scheduler, STEPS)
    assert len(calls) == result.unet_calls == expected_calls
    assert [c.step for c in calls][-1] == STEPS - 1
    assert_same_result(result, ref_latents, ref_image)


def assert_same_result(result, ref_latents, ref_image):
    latents = np.asarray(result.latents)
    assert latents.shape == ref_latents.shape
    # Latents, not only pixels: a random-weight VAE maps very different latents to similar images.
    assert np.abs(latents - ref_latents).max() <= 1e-4 * np.abs(ref_latents).max()
    image = np.clip(np.asarray(result.image) / 2 + 0.5, 0, 1)
    assert np.abs(image - ref_image).max() <= 1e-3
    # The bytes we hand out are diffusers' own rounding of that image.
    ref_rgb = (ref_image[0].transpose(1, 2, 0) * 255).round().astype(np.uint8)
    got_rgb = np.frombuffer(result.rgb, np.uint8).reshape(ref_rgb.shape)
    assert np.abs(got_rgb.astype(int) - ref_rgb).max() <= 1


def test_turbo_one_step_without_guidance(reference_pipe, ours, tiny_model_dir):
    """SD-Turbo's case: Euler with trailing spacing, 1 step, guidance 0 (no unconditional pass)."""
    from diffusers import EulerDiscreteScheduler

    config = dict(reference_pipe.scheduler.config, timestep_spacing="trailing")
    reference_pipe.scheduler = EulerDiscreteScheduler.from_config(config)
    with torch.no_grad():
        ref = reference_pipe("a red star", num_inference_steps=1, guidance_scale=0.0,
                             generator=torch.Generator("cpu").manual_seed(3), output_type="latent").images.numpy()
    model = Model.from_dir(str(tiny_model_dir))
    model.manifest["scheduler_config"]["timestep_spacing"] = "trailing"
    calls = []
    runtime = OnnxRuntime()
    run = runtime.run
    runtime.run = lambda graph, feeds: calls.append({k: v.shape for k, v in feeds.items()}) or run(graph, feeds)
    result = Pipeline(model, runtime).generate(Settings("a red star", seed=3, steps=1, guidance=0.0, scheduler="euler"))
    assert np.abs(np.asarray(result.latents) - ref).max() <= 1e-4 * np.abs(ref).max()
    # One text-encoder pass, one UNet call with batch 1, one decode: no unconditional work at all.
    assert [c.get("sample", c.get("input_ids", c.get("latent_sample"))) for c in calls] == [
        (1, 77), (1, 4, 16, 16), (1, 4, 16, 16)]


def test_guidance_uses_one_batch_of_two(ours):
    calls = []
    runtime = ours.runtime
    run = runtime.run
    runtime.run = lambda graph, feeds: calls.append(feeds) or run(graph, feeds)
    try:
        ours.generate(Settings("a circle", negative="a square", seed=1, steps=3, guidance=5.0, scheduler="ddim"))
    finally:
        runtime.run = run
    unet_calls = [c for c in calls if "sample" in c]
    assert len(unet_calls) == 3 and all(c["sample"].shape[0] == 2 for c in unet_calls)
    # Batch item 0 is the negative prompt (it replaces the empty prompt), item 1 the prompt: diffusers' order.
    context = unet_calls[0]["encoder_hidden_states"]
    negative = ours.encode_text(ours.tokenizer.encode("a square"))
    prompt = ours.encode_text(ours.tokenizer.encode("a circle"))
    np.testing.assert_array_equal(context, np.concatenate([negative, prompt]))


def test_sd15_pndm_checkpoint_defaults_to_pndm(tiny_pipeline_dir, tmp_path):
    """A checkpoint whose scheduler_config.json names PNDM (as SD 1.5's does) converts to a model
    whose default scheduler is PNDM, so `sdlens generate` with no --scheduler is diffusers' default
    StableDiffusionPipeline."""
    import json
    import shutil

    from diffusers import StableDiffusionPipeline
    from transformers import CLIPTokenizerFast

    from export.convert import convert
    from sdlens.__main__ import main

    src = tmp_path / "sd15-style"
    shutil.copytree(tiny_pipeline_dir, src)
    (src / "scheduler" / "scheduler_config.json").write_text(json.dumps(SD15_PNDM_CONFIG))
    index = json.loads((src / "model_index.json").read_text())
    index["scheduler"] = ["diffusers", "PNDMScheduler"]  # as SD 1.5's model_index.json names it
    (src / "model_index.json").write_text(json.dumps(index))
    model_dir = tmp_path / "model"
    manifest = convert(str(src), model_dir, ["fp32"], quiet=True)
    assert manifest["defaults"]["scheduler"] == "pndm" and manifest["defaults"]["karras"] is False
    assert manifest["scheduler_config"]["skip_prk_steps"] is True

    pipe = StableDiffusionPipeline.from_pretrained(src, safety_checker=None, feature_extractor=None,
                                                   requires_safety_checker=False)
    pipe.tokenizer = CLIPTokenizerFast.from_pretrained(src / "tokenizer")
    pipe.set_progress_bar_config(disable=True)
    assert type(pipe.scheduler).__name__ == "PNDMScheduler"
    steps = manifest["defaults"]["steps"]
    with torch.no_grad():
        ref = pipe("a green triangle", num_inference_steps=steps, guidance_scale=manifest["defaults"]["guidance"],
                   generator=torch.Generator("cpu").manual_seed(5), output_type="latent").images.numpy()
    out = tmp_path / "latents.npy"
    assert main(["generate", "a green triangle", "--model", str(model_dir), "--seed", "5",
                 "--out", str(tmp_path / "out.png"), "--save-latents", str(out)]) == 0
    latents = np.load(out)
    assert np.abs(latents - ref).max() <= 1e-4 * np.abs(ref).max()


def test_formula_below_one_is_an_opt_in_that_does_what_the_formula_says(ours):
    """Off by default (diffusers: g = 0 is g = 1). On, g = 0 gives ε = ε_uncond: the prompt is
    ignored, so the image is the negative prompt's own image; and g = 0.5 lies between the two."""
    def image(prompt, guidance, formula=False, negative="a square"):
        settings = Settings(prompt, negative=negative, seed=4, steps=3, guidance=guidance, scheduler="ddim",
                            formula_below_one=formula)
        return np.frombuffer(ours.generate(settings).rgb, np.uint8).astype(int)

    assert np.array_equal(image("a circle", 0.0), image("a circle", 1.0))  # the default, as diffusers
    ignored = image("a circle", 0.0, formula=True)
    assert np.abs(ignored - image("a square", 1.0)).max() <= 1  # ε_uncond alone: the negative prompt's picture
    assert not np.array_equal(ignored, image("a circle", 1.0))
    assert np.array_equal(image("a circle", 1.0, formula=True), image("a circle", 1.0))
    assert Settings("x", formula_below_one="1").checked().formula_below_one is True
    with pytest.raises(SdlensError, match="formula_below_one must be true or false"):
        Settings("x", formula_below_one="maybe").checked()
