"""`export import`: a folder written by optimum's ONNX exporter becomes an sdlens model, without
PyTorch, and generates exactly what the same weights converted by `export convert` generate."""

import json
import subprocess
import sys

import numpy as np
import pytest

from .conftest import ROOT

NO_TORCH = ("import sys\n"
            "for name in ('torch', 'diffusers'): sys.modules[name] = None  # as if not installed\n"
            "from export.__main__ import main\n"
            "code = main(sys.argv[1:])\n"
            "assert 'torch' not in sys.modules or sys.modules['torch'] is None\n"
            "sys.exit(code)\n")


def run_without_torch(*args):
    return subprocess.run([sys.executable, "-c", NO_TORCH, *args], cwd=ROOT, capture_output=True, text=True)


@pytest.fixture(scope="module")
def optimum_export(tiny_pipeline_dir, tmp_path_factory):
    """The tiny pipeline as `optimum-cli export onnx --task text-to-image` writes it."""
    from optimum.exporters.onnx import main_export

    out = tmp_path_factory.mktemp("optimum") / "tiny-onnx"
    main_export(str(tiny_pipeline_dir), output=out, task="text-to-image", do_validation=False)
    return out


@pytest.fixture(scope="module")
def imported(optimum_export, tmp_path_factory):
    out = tmp_path_factory.mktemp("imported") / "tiny-imported"
    proc = run_without_torch("import", str(optimum_export), "--out", str(out), "--variants", "fp32,int8",
                             "--max-file-mib", "1")
    assert proc.returncode == 0, proc.stderr
    return out


def test_imported_model_is_complete(imported):
    from export.convert import listed_files
    from sdlens.model import Model

    manifest = json.loads((imported / "manifest.json").read_text())
    Model.from_dir(str(imported), variant="int8")  # every file there, sizes and sha256 right
    assert sorted(p.relative_to(imported).as_posix() for p in imported.rglob("*") if p.is_file()) == \
        sorted(listed_files(manifest) + ["manifest.json"])
    assert len(manifest["components"]["unet"]["variants"]["fp32"]["files"]) > 2  # split at 1 MiB
    assert manifest["vae_scale_factor"] == 4 and manifest["vae_scaling_factor"] == pytest.approx(0.18215)
    assert manifest["scheduler_config"]["_class_name"] == "DDIMScheduler"
    assert manifest["defaults"]["scheduler"] == "ddim" and manifest["defaults"]["width"] == 64
    for component in manifest["components"].values():
        assert component["variants"]["fp32"]["parity"]["max_abs_err"] == 0.0  # the source graph, re-saved
        assert component["variants"]["int8"]["parity"]["rel_err"] < 0.1
    assert len(manifest["latent_rgb"]["weights"]) == 4


def test_imported_model_generates_like_the_converted_one(imported, tiny_model_dir):
    from sdlens.cpython.runtime import OnnxRuntime
    from sdlens.model import Model
    from sdlens.pipeline import Pipeline, Settings

    settings = Settings(prompt="a blue square", seed=3, steps=3, guidance=7.5, scheduler="euler")
    ours = Pipeline(Model.from_dir(str(imported)), OnnxRuntime()).generate(settings)
    converted = Pipeline(Model.from_dir(str(tiny_model_dir)), OnnxRuntime()).generate(settings)
    a, b = np.asarray(ours.latents), np.asarray(converted.latents)
    assert np.abs(a - b).max() <= 1e-5 * np.abs(b).max()


def test_a_folder_that_is_not_an_export_is_named(optimum_export, tiny_pipeline_dir, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(optimum_export, broken)
    (broken / "unet" / "model.onnx").unlink()
    shutil.rmtree(broken / "tokenizer")
    cases = [(broken, "missing unet/model.onnx, tokenizer/vocab.json, tokenizer/merges.txt"),
             (tiny_pipeline_dir, "use python -m export convert"),
             (tmp_path / "nope", "no such folder")]
    for src, message in cases:
        proc = run_without_torch("import", str(src), "--out", str(tmp_path / "out"))
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert lines[-1].startswith("error: ") and message in lines[-1], proc.stderr
        assert not (tmp_path / "out").exists()
