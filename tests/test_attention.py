"""Per-word cross-attention maps: the UNet graph's `attention_maps` output against PyTorch.

The reference is diffusers' own attention processor (AttnProcessor) on the same checkpoint, with
its softmax probabilities recorded, reduced as the definition says: conditional batch item, mean
over heads, bilinear (align_corners=False) to the latent's size, equal-weight mean over layers.
"""

import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from export.attention import OUTPUT, add_to_model_dir, remove_attention_output
from sdlens.__main__ import main as sdlens_main

PROMPT = "a big red circle on the left, light blue background"
SEED = 7
STEPS = 4


class RecordingProcessor:
    """diffusers' AttnProcessor, unchanged, with the probabilities it computes kept in `store`."""

    def __init__(self, name, store, sizes):
        from diffusers.models.attention_processor import AttnProcessor

        self.inner = AttnProcessor()
        self.name, self.store, self.sizes = name, store, sizes

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        original = attn.get_attention_scores

        def scores(query, key, mask=None):
            probs = original(query, key, mask)
            self.store.append((self.name, probs.detach().clone(), hidden_states.shape[0]))
            return probs

        attn.get_attention_scores = scores
        try:
            return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        finally:
            del attn.get_attention_scores


def reference_maps(pipe, prompt, guidance, steps, seed, negative=None):
    """(steps, tokens, h, w) from diffusers, by the issue's definition."""
    unet = pipe.unet
    store, sizes = [], {}
    processors = {}
    for name in unet.attn_processors:
        if name.endswith("attn2.processor"):
            processors[name] = RecordingProcessor(name, store, sizes)
        else:
            from diffusers.models.attention_processor import AttnProcessor

            processors[name] = AttnProcessor()
    unet.set_attn_processor(processors)
    hooks = []
    for module_name, module in unet.named_modules():
        if type(module).__name__ == "Transformer2DModel":
            def remember(mod, args, kwargs, module_name=module_name):
                hidden = args[0] if args else kwargs["hidden_states"]
                sizes[module_name] = tuple(hidden.shape[-2:])
            hooks.append(module.register_forward_pre_hook(remember, with_kwargs=True))
    per_call = []

    def on_unet(module, args, kwargs, output):
        sample = args[0] if args else kwargs["sample"]
        h, w = sample.shape[-2:]
        layers = []
        for name, probs, batch in store:
            heads = probs.shape[0] // batch
            probs = probs.reshape(batch, heads, probs.shape[1], probs.shape[2])[-1]  # conditional item
            lh, lw = sizes[name.split(".transformer_blocks")[0]]
            grid = probs.mean(0).transpose(0, 1).reshape(1, -1, lh, lw)
            layers.append(torch.nn.functional.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False)[0])
        per_call.append(torch.stack(layers).mean(0).numpy())
        store.clear()

    hooks.append(unet.register_forward_hook(on_unet, with_kwargs=True))
    try:
        with torch.no_grad():
            pipe(prompt, negative_prompt=negative, num_inference_steps=steps, guidance_scale=guidance,
                 generator=torch.Generator("cpu").manual_seed(seed), output_type="latent")
    finally:
        for hook in hooks:
            hook.remove()
    return np.stack(per_call)


@pytest.fixture(scope="module")
def reference_pipe(tiny_pipeline_dir):
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    from transformers import CLIPTokenizerFast

    pipe = StableDiffusionPipeline.from_pretrained(
        tiny_pipeline_dir, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.tokenizer = CLIPTokenizerFast.from_pretrained(tiny_pipeline_dir / "tokenizer")
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("guidance", [7.5, 1.0])
def test_cli_maps_equal_pytorch_reference(reference_pipe, tiny_model_dir, tmp_path, guidance):
    out = tmp_path / "attention.npy"
    code = sdlens_main(["generate", PROMPT, "--model", str(tiny_model_dir), "--seed", str(SEED), "--steps", str(STEPS),
                        "--guidance", str(guidance), "--scheduler", "ddim", "--out", str(tmp_path / "out.png"),
                        "--save-attention", str(out)])
    assert code == 0
    got = np.load(out)
    expected = reference_maps(reference_pipe, PROMPT, guidance, STEPS, SEED)
    latent_hw = reference_pipe.unet.config.sample_size
    assert got.dtype == np.float32
    assert got.shape == expected.shape == (STEPS, 77, latent_hw, latent_hw)
    assert np.abs(got - expected).max() <= 1e-4
    # Each position's probabilities over the tokens sum to one, and resizing and averaging keep that.
    assert np.allclose(got.sum(axis=1), 1.0, atol=1e-4)
    # Not a constant: the maps differ between tokens and between steps.
    assert got[:, 1].std() > 0 and np.abs(got[0] - got[-1]).max() > 1e-6


def test_graph_surgery_keeps_weights_and_output(tiny_model_dir, tmp_path):
    """A folder exported without maps gains them; the weights and out_sample stay bit-identical."""
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    variants = json.loads((model_dir / "manifest.json").read_text())["components"]["unet"]["variants"]
    weights, plain, feeds = {}, {}, {}
    for variant, entry in variants.items():
        path = model_dir / entry["files"][0]["path"]
        graph = onnx.load(str(path))
        remove_attention_output(graph)  # as exported before attention maps existed
        onnx.save(graph, str(path))
        weights[variant] = {t.name: t.raw_data for t in graph.graph.initializer}
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [o.name for o in session.get_outputs()] == ["out_sample"]
        if not feeds:
            rng = np.random.default_rng(0)
            _, channels, h, w = session.get_inputs()[0].shape
            feeds = {"sample": rng.standard_normal((2, channels, 8, 8), dtype=np.float32),
                     "timestep": np.array(500.0, np.float32),
                     "encoder_hidden_states": rng.standard_normal((2, 77, session.get_inputs()[2].shape[2]),
                                                                  dtype=np.float32)}
        plain[variant] = session.run(None, feeds)[0]

    assert sorted(add_to_model_dir(model_dir)) == sorted(variants)
    assert add_to_model_dir(model_dir) == []  # a second time changes nothing
    from sdlens.model import Model

    Model.from_dir(str(model_dir))  # the manifest's sha256 and sizes match the rewritten files
    updated = json.loads((model_dir / "manifest.json").read_text())["components"]["unet"]["variants"]
    for variant, entry in updated.items():
        assert [o["name"] for o in entry["outputs"]] == ["out_sample", OUTPUT]
        path = model_dir / entry["files"][0]["path"]
        assert {t.name: t.raw_data for t in onnx.load(str(path)).graph.initializer} == weights[variant]
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        noise, maps = session.run(None, feeds)
        assert np.array_equal(noise, plain[variant]), variant
        assert maps.shape == (2, 77, 8, 8) and np.allclose(maps.sum(axis=1), 1.0, atol=1e-2)


def test_model_without_maps_says_so(tiny_model_dir, tmp_path, capsys):
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    for entry in manifest["components"]["unet"]["variants"].values():
        entry["outputs"] = entry["outputs"][:1]
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    code = sdlens_main(["generate", PROMPT, "--model", str(model_dir), "--steps", "2",
                        "--out", str(tmp_path / "o.png"), "--save-attention", str(tmp_path / "a.npy")])
    assert code == 2
    assert "no attention output" in capsys.readouterr().err
    assert not (tmp_path / "a.npy").exists() and not (tmp_path / "o.png").exists()


def test_default_model_words_light_up_their_region():
    """On the committed default model, the colour and shape words pull attention to the object and
    "background" to the rest (object cells found from the generated pixels alone)."""
    from sdlens.cpython.runtime import OnnxRuntime
    from sdlens.model import Model
    from sdlens.pipeline import Pipeline, Settings

    from .conftest import ROOT

    pipeline = Pipeline(Model.from_dir(str(ROOT / "models" / "shapes")), OnnxRuntime(threads=1))
    for prompt in ("a big red star on the left, light blue background", "a big red heart at the bottom left, grey background"):
        maps = []
        result = pipeline.generate(Settings(prompt, "", 1, 10, 7.5, "ddim"), on_step=lambda t: maps.append(t.attention[0]),
                                   attention=True)
        image = np.frombuffer(result.rgb, np.uint8).reshape(result.height, result.width, 3).astype(float)
        border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
        is_object = np.abs(image - np.median(border, axis=0)).sum(-1) > 60
        h, w = maps[0].shape[1:]
        cells = is_object.reshape(h, result.height // h, w, result.width // w).mean(axis=(1, 3))
        total = np.stack(maps).sum(axis=0)
        tokens = result.encoding.tokens
        contrast = {}
        for word in ("red", "background", tokens[4].replace("</w>", "")):
            m = total[tokens.index(word + "</w>")]
            contrast[word] = m[cells > 0.5].mean() / m[cells < 0.1].mean()
        assert contrast["red"] > 1.3 and contrast[tokens[4].replace("</w>", "")] > 1.3, (prompt, contrast)
        assert contrast["background"] < 0.97, (prompt, contrast)


@pytest.fixture(scope="module")
def fullsize_shaped(tmp_path_factory):
    """SD 2.1's UNet layout (4 levels, 2 layers per block, linear projections, 3 cross-attention
    levels, as SD-Turbo) at reduced width, exported the way full-size models are: with external data."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTokenizer

    from export.clip_vocab import write_clip_tokenizer
    from export.convert import convert
    from export.tiny import IMAGE_SIZE, TEXT_HIDDEN, build_tiny_pipeline

    root = tmp_path_factory.mktemp("fullsize-shaped")
    write_clip_tokenizer(root / "src" / "tokenizer")
    pipe = build_tiny_pipeline(CLIPTokenizer.from_pretrained(root / "src" / "tokenizer"))
    torch.manual_seed(3)
    pipe.unet = UNet2DConditionModel(
        sample_size=IMAGE_SIZE // 4, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(32, 32, 64, 64), attention_head_dim=(2, 2, 4, 4), use_linear_projection=True,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, cross_attention_dim=TEXT_HIDDEN,
    ).eval()
    pipe.register_modules(unet=pipe.unet)
    pipe.save_pretrained(root / "src", safe_serialization=True)
    # a low file limit, so the UNet's weights span several external-data files as at full size
    convert(str(root / "src"), root / "model", ["fp32"], quiet=True, max_file_bytes=1_200_000)
    return root


def test_fullsize_layout_with_external_data(fullsize_shaped, tmp_path):
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    from transformers import CLIPTokenizerFast

    files = json.loads((fullsize_shaped / "model" / "manifest.json").read_text())["components"]["unet"]["variants"]
    assert len(files["fp32"]["files"]) > 2  # graph + several external-data files
    assert [o["name"] for o in files["fp32"]["outputs"]] == ["out_sample", OUTPUT]
    pipe = StableDiffusionPipeline.from_pretrained(fullsize_shaped / "src", safety_checker=None, feature_extractor=None,
                                                   requires_safety_checker=False)
    pipe.tokenizer = CLIPTokenizerFast.from_pretrained(fullsize_shaped / "src" / "tokenizer")
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    out = tmp_path / "attention.npy"
    assert sdlens_main(["generate", PROMPT, "--model", str(fullsize_shaped / "model"), "--seed", "1", "--steps", "2",
                        "--guidance", "7.5", "--scheduler", "ddim", "--out", str(tmp_path / "o.png"),
                        "--save-attention", str(out)]) == 0
    expected = reference_maps(pipe, PROMPT, 7.5, 2, 1)
    got = np.load(out)
    assert got.shape == expected.shape == (2, 77, 16, 16)
    assert np.abs(got - expected).max() <= 1e-4
