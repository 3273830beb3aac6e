"""`export convert`: every graph of every variant loads, matches PyTorch, and is described truly."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from export import parity, variants
from export.convert import COMPONENTS, convert, load_pipeline

from .conftest import ALL_VARIANTS, ROOT

# Largest deviation from PyTorch allowed, relative to the reference's largest magnitude.
# fp16 rounds weights and activations (11-bit mantissa); int8 and q4 quantize weights of a
# random-weight model, whose values have no structure for quantization to exploit. The tiny
# text encoder's 32-wide rows are each a single 4-bit block, the worst case for q4.
TOLERANCE = {"fp32": 1e-5, "fp16": 5e-3, "int8": 0.1, "q4": 0.25}


@pytest.fixture(scope="module")
def references(tiny_pipeline_dir):
    return parity.torch_references(load_pipeline(str(tiny_pipeline_dir)))


@pytest.fixture(scope="module")
def manifest(tiny_model_dir):
    return json.loads((tiny_model_dir / "manifest.json").read_text())


@pytest.mark.parametrize("variant", ALL_VARIANTS)
@pytest.mark.parametrize("component", COMPONENTS)
def test_variant_matches_pytorch(tiny_model_dir, manifest, references, component, variant):
    entry = manifest["components"][component]["variants"][variant]
    path = tiny_model_dir / entry["files"][0]["path"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds, expected = references[component]
    assert [i.name for i in session.get_inputs()] == [i["name"] for i in entry["inputs"]]
    (got,) = session.run([entry["outputs"][0]["name"]], feeds)
    assert got.shape == expected.shape
    err = float(np.abs(got - expected).max())
    assert err <= TOLERANCE[variant] * float(np.abs(expected).max())
    # The manifest's parity report is what we just measured.
    assert entry["parity"]["max_abs_err"] == pytest.approx(err, rel=1e-3, abs=1e-7)


def test_manifest_hashes_and_sizes(tiny_model_dir, manifest):
    entries = [manifest["tokenizer"]["file"]] + [
        f for c in manifest["components"].values() for v in c["variants"].values() for f in v["files"]
    ]
    for entry in entries:
        data = (tiny_model_dir / entry["path"]).read_bytes()
        assert len(data) == entry["bytes"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]


def test_manifest_describes_the_model(manifest):
    assert manifest["latent_channels"] == 4
    assert manifest["vae_scale_factor"] == 4
    assert manifest["vae_scaling_factor"] == pytest.approx(0.18215)
    assert manifest["prediction_type"] == "epsilon"
    assert manifest["scheduler_config"]["beta_schedule"] == "scaled_linear"
    assert manifest["defaults"] == {"steps": 25, "guidance": 7.5, "scheduler": "ddim", "width": 64,
                                    "height": 64, "negative": ""}
    unet = manifest["components"]["unet"]["variants"]["fp32"]
    assert [i["name"] for i in unet["inputs"]] == ["sample", "timestep", "encoder_hidden_states"]
    assert unet["outputs"][0]["name"] == "out_sample"
    assert manifest["components"]["unet"]["variants"]["fp16"]["backends"] == ["webgpu-f16"]
    assert manifest["components"]["unet"]["variants"]["int8"]["backends"] == ["wasm"]
    assert manifest["tokenizer"]["max_length"] == 77


def test_large_graphs_use_external_data(tiny_pipeline_dir, references, tmp_path, monkeypatch):
    monkeypatch.setattr(variants, "EXTERNAL_DATA_BYTES", 100_000)
    out = tmp_path / "split"
    manifest = convert(str(tiny_pipeline_dir), out, ["fp32", "fp16"], quiet=True)
    files = manifest["components"]["unet"]["variants"]["fp16"]["files"]
    assert [Path(f["path"]).name for f in files] == ["model_fp16.onnx", "model_fp16.onnx_data"]
    assert files[1]["bytes"] > 4 * files[0]["bytes"]  # the weights moved out of the graph file
    report = parity.check(out / files[0]["path"], references["unet"])
    assert report["rel_err"] <= TOLERANCE["fp16"]


def test_failed_export_leaves_nothing(tiny_pipeline_dir, tmp_path, monkeypatch):
    calls = []

    def failing(variant, fp32_path, out_path):
        calls.append(variant)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return variants.write_variant(variant, fp32_path, out_path)

    monkeypatch.setattr("export.convert.write_variant", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        convert(str(tiny_pipeline_dir), tmp_path / "model", ["fp32", "fp16"], quiet=True)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_export_keeps_the_old_model(tiny_pipeline_dir, tiny_model_dir, tmp_path, monkeypatch):
    out = tmp_path / "model"
    out.mkdir()
    (out / "manifest.json").write_text("old")

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("export.convert.write_variant", interrupted)
    with pytest.raises(KeyboardInterrupt):
        convert(str(tiny_pipeline_dir), out, ["fp32"], force=True, quiet=True)
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert (out / "manifest.json").read_text() == "old"


def run_export(*args):
    return subprocess.run([sys.executable, "-m", "export", *args], cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize(
    "args, message",
    [
        (["convert", "{missing}", "--out", "{out}"], "no such folder"),
        (["convert", "{notsd}", "--out", "{out}"], "not a diffusers pipeline folder"),
        (["convert", "{tiny}", "--out", "{out}", "--variants", "fp32,int3"], "unknown variant int3"),
        (["convert", "{tiny}", "--out", "{existing}"], "already exists; pass --force"),
    ],
)
def test_bad_input_is_one_line(args, message, tiny_pipeline_dir, tmp_path):
    (tmp_path / "existing").mkdir()
    (tmp_path / "notsd").mkdir()
    names = {"missing": tmp_path / "nope", "notsd": tmp_path / "notsd", "out": tmp_path / "out",
             "tiny": tiny_pipeline_dir, "existing": tmp_path / "existing"}
    proc = run_export(*[a.format(**names) for a in args])
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing", "notsd"]


def test_cli_convert_with_force_replaces(tiny_pipeline_dir, tmp_path):
    out = tmp_path / "m"
    out.mkdir()
    (out / "stale.txt").write_text("x")
    proc = run_export("convert", str(tiny_pipeline_dir), "--out", str(out), "--variants", "fp32", "--force")
    assert proc.returncode == 0, proc.stderr
    assert "parity vs PyTorch" in proc.stdout
    assert "text_encoder" in proc.stderr  # the progress bars
    assert not (out / "stale.txt").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest["components"]["unet"]["variants"]) == ["fp32"]


def test_extras_and_default_flag_reach_the_manifest(tiny_pipeline_dir, tmp_path):
    import shutil

    src = tmp_path / "src"
    shutil.copytree(tiny_pipeline_dir, src)
    extras = {"starter_prompts": ["a red circle"], "prompt_pairs": [["a red circle", "a blue circle"]],
              "defaults": {"steps": 10, "guidance": 3.0}, "ignored": 1,
              "description": "shapes", "model_card": {"vocabulary": ["a", "red", "circle"]}}
    (src / "sdlens_extras.json").write_text(json.dumps(extras))
    manifest = convert(str(src), tmp_path / "m", ["fp32"], quiet=True, default_model=True,
                       defaults={"steps": 12, "guidance": None})
    assert manifest["default"] is True
    assert manifest["starter_prompts"] == ["a red circle"]
    assert manifest["prompt_pairs"] == [["a red circle", "a blue circle"]]
    assert manifest["description"] == "shapes" and manifest["model_card"] == {"vocabulary": ["a", "red", "circle"]}
    assert manifest["defaults"]["steps"] == 12 and manifest["defaults"]["guidance"] == 3.0
    assert "ignored" not in manifest
    assert json.loads((tmp_path / "m" / "manifest.json").read_text()) == manifest


def test_latent_rgb_map_previews_colours(tiny_pipeline_dir, manifest):
    """On a VAE whose latents are (locally) the image itself, the fitted map recovers the colours."""
    import torch

    from export.latent_rgb import fit_latent_rgb

    class ColourVAE:  # latents = downsampled image in channels 0-2, a constant in channel 3
        class config:
            block_out_channels = (1, 1)
            scaling_factor = 1.0

        def encode(self, images):
            pooled = torch.nn.functional.avg_pool2d(images, 2)
            latents = torch.cat([pooled, torch.ones_like(pooled[:, :1])], dim=1)
            return type("Out", (), {"latent_dist": type("D", (), {"mean": latents})})

    fitted = fit_latent_rgb(ColourVAE(), 32)
    weights, bias = np.array(fitted["weights"]), np.array(fitted["bias"])
    # rgb = (latent + 1) / 2 per channel
    np.testing.assert_allclose(weights[:3], np.eye(3) * 0.5, atol=1e-4)
    assert len(manifest["latent_rgb"]["weights"]) == 4 and len(manifest["latent_rgb"]["bias"]) == 3
