"""Each SD family's real behaviour, on reduced-width versions of its real configs: the exported
manifest says what the family is, and sdlens generates the latents diffusers does.
(The same at full size is `python -m tests.bench full-size`.)"""

import json

import numpy as np
import pytest
import torch

from export.families import FAMILIES, reduced, write_pipeline
from sdlens.schedulers import SCHEDULERS

from .test_generate_parity import DIFFUSERS_SCHEDULERS

DIFFUSERS_SCHEDULERS = {**DIFFUSERS_SCHEDULERS, "pndm": "PNDMScheduler"}


def test_full_size_configs_are_the_published_models():
    """Parameter counts of the published checkpoints, from the configs alone (no memory: meta device)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    def count(module):
        return sum(p.numel() for p in module.parameters())

    expected = {"sd-turbo": (865_910_724, 340_387_840), "sd2.1-base": (865_910_724, 340_387_840),
                "sd2.1": (865_910_724, 340_387_840), "sd1.5": (859_520_964, 123_060_480)}
    with torch.device("meta"):
        for name, family in FAMILIES.items():
            unet, text = count(UNet2DConditionModel(**family.unet)), count(CLIPTextModel(CLIPTextConfig(**family.text_encoder)))
            assert (unet, text) == expected[name], name
            assert count(AutoencoderKL(**family.vae)) == 83_653_863
    assert {n: f.image_size for n, f in FAMILIES.items()} == {"sd-turbo": 512, "sd2.1-base": 512, "sd2.1": 768,
                                                             "sd1.5": 512}


@pytest.fixture(scope="module", params=list(FAMILIES))
def family_model(request, tmp_path_factory):
    from export.convert import convert

    family = reduced(FAMILIES[request.param])
    root = tmp_path_factory.mktemp(request.param)
    write_pipeline(family, root / "src")
    # as at full size, where SD 2.1's 768² self-attention is exported head by head (export.sliced_attention)
    slicing = "yes" if request.param == "sd2.1" else "auto"
    convert(str(root / "src"), root / "model", ["fp32"], quiet=True, slice_attention=slicing)
    return request.param, root / "src", root / "model"


def test_manifest_says_what_the_family_is(family_model):
    name, _, model_dir = family_model
    manifest = json.loads((model_dir / "manifest.json").read_text())
    family = FAMILIES[name]
    assert manifest["scheduler_config"]["_class_name"] == family.scheduler["_class_name"]
    assert manifest["prediction_type"] == {"sd2.1": "v_prediction"}.get(name, "epsilon")
    assert manifest["defaults"]["width"] == manifest["defaults"]["height"] == 128  # reduced: 16² latents
    assert manifest["text_hidden_size"] == 32
    assert manifest["components"]["unet"]["self_attention"] == ("per-head" if name == "sd2.1" else "whole")
    own = {"PNDMScheduler": "pndm", "DDIMScheduler": "ddim", "EulerDiscreteScheduler": "euler"}[
        family.scheduler["_class_name"]]
    if name == "sd-turbo":
        assert manifest["defaults"]["steps"] == 1 and manifest["defaults"]["guidance"] == 0.0
        assert manifest["scheduler_config"]["timestep_spacing"] == "trailing"
    if own in SCHEDULERS:
        assert manifest["defaults"]["scheduler"] == own and "scheduler_note" not in manifest
    else:  # SD 1.5 and 2.1-base ship PNDM, until sdlens has it
        assert manifest["defaults"]["scheduler"] == "ddim"
        assert "PNDMScheduler" in manifest["scheduler_note"]
    # SD 2's tokenizer pads with "!" (id 0), SD 1's with <|endoftext|> (49407).
    from sdlens.tokenizer import ClipTokenizer

    tokenizer = ClipTokenizer.from_file(str(model_dir / manifest["tokenizer"]["file"]["path"]))
    assert tokenizer.encode("a cat").ids[-1] == (49407 if name == "sd1.5" else 0)


def test_same_latents_as_diffusers(family_model):
    """At the family's default scheduler, steps (3, or Turbo's 1) and guidance: latents within 1e-3."""
    import diffusers
    from diffusers import StableDiffusionPipeline
    from transformers import CLIPTokenizerFast

    from sdlens.cpython.runtime import OnnxRuntime
    from sdlens.model import Model
    from sdlens.pipeline import Pipeline, Settings

    name, src, model_dir = family_model
    model = Model.from_dir(str(model_dir))
    defaults = model.defaults
    steps = 1 if name == "sd-turbo" else 3
    prompt, seed = "a red circle on a blue square", 7
    pipe = StableDiffusionPipeline.from_pretrained(src, safety_checker=None, feature_extractor=None,
                                                   requires_safety_checker=False)
    pipe.tokenizer = CLIPTokenizerFast.from_pretrained(src / "tokenizer")
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = getattr(diffusers, DIFFUSERS_SCHEDULERS[defaults["scheduler"]]).from_config(pipe.scheduler.config)
    with torch.no_grad():
        ref = pipe(prompt, num_inference_steps=steps, guidance_scale=defaults["guidance"],
                   generator=torch.Generator("cpu").manual_seed(seed), output_type="latent").images.numpy()
    result = Pipeline(model, OnnxRuntime()).generate(
        Settings(prompt=prompt, seed=seed, steps=steps, guidance=defaults["guidance"], scheduler=defaults["scheduler"]))
    latents = np.asarray(result.latents)
    assert latents.shape == ref.shape == (1, 4, 16, 16)
    assert np.abs(latents - ref).max() <= 1e-3 * np.abs(ref).max()
