"""`sdlens fetch` against a Hub on this machine (tests/hub_server.py): tiny repos in optimum's layout
and in the WebNN one become model folders, byte-equal and checked, that `sdlens generate` runs like
diffusers on the same weights; every bad input gets a message that names the repo or the file,
and leaves no half-written folder. No test reaches the internet."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from sdlens.errors import SdlensError

from . import hub_repos
from .conftest import ROOT
from .hub_server import MockHub, Repo
from .test_import import optimum_export  # noqa: F401 (a fixture: the tiny pipeline as optimum exports it)

TOKENIZER_REPO = "stable-diffusion-v1-5/stable-diffusion-v1-5"


@pytest.fixture(scope="module")
def hub(optimum_export):  # noqa: F811
    hub = MockHub()
    hub.repos.update({
        "sdlens-test/tiny-sd-onnx": Repo(hub_repos.optimum_repo(optimum_export), licence="mit"),
        "sdlens-test/tiny-sd-onnx-fp16": Repo(hub_repos.optimum_repo(optimum_export, fp16=True)),
        hub_repos.WEBNN: Repo(hub_repos.webnn_repo(optimum_export)),
        TOKENIZER_REPO: Repo(hub_repos.tokenizer_repo(optimum_export)),
        "sdlens-test/private": Repo({"unet/model.onnx": b"x"}, access="private"),
        "sdlens-test/gated": Repo({"unet/model.onnx": b"x"}, access="gated"),
        "sdlens-test/no-unet": Repo({k: v for k, v in hub_repos.optimum_repo(optimum_export).items()
                                     if not k.startswith("unet/")}),
    })
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def webnn_fp32_hub(optimum_export):
    """The WebNN layout with float32 inputs and outputs (and still a fixed batch of 2), on a Hub of
    its own: the fixed batch checked against diffusers where CPython can run every graph."""
    hub = MockHub()
    hub.repos.update({hub_repos.WEBNN: Repo(hub_repos.webnn_repo(optimum_export, fp16=False)),
                      TOKENIZER_REPO: Repo(hub_repos.tokenizer_repo(optimum_export))})
    hub.start()
    yield hub
    hub.stop()


def run_fetch(hub, *args, env=None):
    """`python -m sdlens fetch`, as a user runs it: without PyTorch (blocked), HF_HOME apart."""
    code = ("import sys\nfor name in ('torch', 'diffusers'): sys.modules[name] = None\n"
            "from sdlens.__main__ import main\nsys.exit(main(sys.argv[1:]))\n")
    environment = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_HUB_DISABLE_TELEMETRY": "1", **(env or {})}
    environment.pop("HF_TOKEN", None)
    environment.update(env or {})
    return subprocess.run([sys.executable, "-c", code, "fetch", *args], cwd=ROOT, capture_output=True, text=True,
                          env=environment)


@pytest.fixture(scope="module")
def fetched(hub, tmp_path_factory):
    root = tmp_path_factory.mktemp("fetched")
    home = tmp_path_factory.mktemp("hf-home")
    folders = {}
    for repo in ("sdlens-test/tiny-sd-onnx", "sdlens-test/tiny-sd-onnx-fp16", hub_repos.WEBNN):
        out = root / repo.split("/")[1]
        proc = run_fetch(hub, repo, "--out", str(out), env={"HF_HOME": str(home)})
        assert proc.returncode == 0, proc.stderr
        folders[repo] = out
    return folders


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("repo", ["sdlens-test/tiny-sd-onnx", "sdlens-test/tiny-sd-onnx-fp16", hub_repos.WEBNN])
def test_fetched_files_are_the_hubs_bytes_and_in_the_manifest(hub, fetched, repo):
    from sdlens.model import tokenizer_entries

    out = fetched[repo]
    manifest = json.loads((out / "manifest.json").read_text())
    listed = tokenizer_entries(manifest) + [f for c in manifest["components"].values()
                                            for v in c["variants"].values() for f in v["files"]]
    published = {**hub.repos[repo].files, **{p.replace("tokenizer/", "tokenizer/"): d for p, d in
                                             hub.repos[TOKENIZER_REPO].files.items()}}
    for entry in listed:
        data = (out / entry["path"]).read_bytes()
        assert entry["sha256"] == sha256(data) and entry["bytes"] == len(data)
        assert data == published[entry["path"]]  # byte-equal, at the repo's own path
    assert manifest["hub"]["commit"] == hub.repos[repo].commit
    assert not out.with_name(out.name + ".partial").exists()


def test_numbers_come_from_the_graphs_and_configs(fetched):
    manifest = json.loads((fetched["sdlens-test/tiny-sd-onnx"] / "manifest.json").read_text())
    assert manifest["hub"]["from_table"] == []  # all from its own files
    unet = manifest["components"]["unet"]["variants"]["fp32"]
    assert {i["name"]: (i["dtype"], i["shape"]) for i in unet["inputs"]}["timestep"] == ("int64", [1])
    text = manifest["components"]["text_encoder"]["variants"]["fp32"]
    assert text["inputs"][0]["dtype"] == "int32" and unet["backends"] == ["webgpu", "wasm"]
    assert manifest["scheduler_config"]["_class_name"] == "DDIMScheduler" and manifest["vae_scale_factor"] == 4
    fp16 = json.loads((fetched["sdlens-test/tiny-sd-onnx-fp16"] / "manifest.json").read_text())
    assert list(fp16["components"]["unet"]["variants"]) == ["fp16"]
    assert fp16["components"]["unet"]["variants"]["fp16"]["backends"] == ["webgpu-f16"]


def test_webnn_layout_takes_only_the_missing_numbers_from_the_table(fetched):
    manifest = json.loads((fetched[hub_repos.WEBNN] / "manifest.json").read_text())
    assert sorted(manifest["hub"]["from_table"]) == ["defaults", "scheduler_config", "tokenizer_max_length",
                                                     "vae_scaling_factor"]
    assert manifest["hub"]["tokenizer_from"] == TOKENIZER_REPO
    # from the graphs' static shapes: 16×16×4 latents, 64×64 pictures, 32-wide text
    assert (manifest["sample_size"], manifest["latent_channels"], manifest["vae_scale_factor"]) == (16, 4, 4)
    unet = manifest["components"]["unet"]["variants"]["fp16"]
    assert [i["shape"][0] for i in unet["inputs"]] == [2, 2, 2]
    assert {i["dtype"] for i in unet["inputs"] if i["name"] != "timestep"} == {"float16"}
    assert "vae_encoder" not in manifest["components"]


def diffusers_image(tiny_pipeline_dir, guidance, steps=4, seed=7, prompt="a red circle", scheduler="DDIMScheduler"):
    import diffusers

    from .test_generate_parity import diffusers_pipeline

    pipe = diffusers_pipeline(diffusers.StableDiffusionPipeline, tiny_pipeline_dir)
    pipe.scheduler = getattr(diffusers, scheduler).from_config(pipe.scheduler.config)
    with torch.no_grad():
        image = pipe(prompt, num_inference_steps=steps, guidance_scale=guidance, output_type="np",
                     generator=torch.Generator("cpu").manual_seed(seed)).images[0]
    return (image * 255).round().astype(np.uint8)


def ours_image(folder, guidance, steps=4, seed=7, prompt="a red circle", scheduler="ddim"):
    from sdlens.cpython.runtime import OnnxRuntime
    from sdlens.model import Model
    from sdlens.pipeline import Pipeline, Settings

    model = Model.from_dir(str(folder), variant=next(iter(json.loads((folder / "manifest.json").read_text())
                                                           ["components"]["unet"]["variants"])))
    result = Pipeline(model, OnnxRuntime()).generate(Settings(prompt=prompt, seed=seed, steps=steps, guidance=guidance,
                                                              scheduler=scheduler))
    return np.frombuffer(result.rgb, np.uint8).reshape(64, 64, 3)


@pytest.mark.parametrize("guidance", [1.0, 7.5])
def test_fetched_model_generates_as_diffusers(fetched, tiny_pipeline_dir, guidance):
    ours = ours_image(fetched["sdlens-test/tiny-sd-onnx"], guidance)
    assert np.abs(ours.astype(int) - diffusers_image(tiny_pipeline_dir, guidance)).max() <= 3


@pytest.mark.parametrize("guidance", [1.0, 7.5])
def test_fixed_batch_of_two_generates_as_diffusers(webnn_fp32_hub, tiny_pipeline_dir, tmp_path, guidance):
    out = tmp_path / "webnn-fp32"
    proc = run_fetch(webnn_fp32_hub, hub_repos.WEBNN, "--out", str(out), env={"HF_HOME": str(tmp_path / "home")})
    assert proc.returncode == 0, proc.stderr
    # The table's scheduler for this repo is Euler (as the WebNN demo runs it).
    ours = ours_image(out, guidance, scheduler="euler")
    reference = diffusers_image(tiny_pipeline_dir, guidance, scheduler="EulerDiscreteScheduler")
    assert np.abs(ours.astype(int) - reference).max() <= 3


def test_fp16_inside_runs_on_the_cpu_close_to_fp32(fetched):
    a = ours_image(fetched["sdlens-test/tiny-sd-onnx"], 7.5).astype(int)
    b = ours_image(fetched["sdlens-test/tiny-sd-onnx-fp16"], 7.5).astype(int)
    assert np.abs(a - b).mean() < 8  # fp16 rounding, not another picture


@pytest.mark.parametrize("repo, words", [
    # The Hub answers 401 for a repo that does not exist when no token is sent (so as not to tell
    # which private repos exist), and so does the mock: the message covers both.
    ("sdlens-test/nothing-here", ["sdlens-test/nothing-here", "not found", "private"]),
    ("sdlens-test/private", ["private", "token", "HF_TOKEN"]),
    ("sdlens-test/gated", ["gated", "licence", "HF_TOKEN"]),
    ("sdlens-test/no-unet", ["sdlens-test/no-unet", "unet/model.onnx", "found:", "text_encoder/model.onnx"]),
])
def test_bad_repos_are_named(hub, tmp_path, repo, words):
    out = tmp_path / "out"
    proc = run_fetch(hub, repo, "--out", str(out), env={"HF_HOME": str(tmp_path / "home")})
    assert proc.returncode == 2
    for word in words:
        assert word in proc.stderr, proc.stderr
    assert not out.exists()


def test_a_file_that_differs_from_its_listing_is_deleted_and_named(hub, tmp_path):
    hub.corrupt.add("unet/model.onnx")
    try:
        out = tmp_path / "out"
        proc = run_fetch(hub, "sdlens-test/tiny-sd-onnx", "--out", str(out), env={"HF_HOME": str(tmp_path / "home")})
    finally:
        hub.corrupt.discard("unet/model.onnx")
    assert proc.returncode == 2 and "unet/model.onnx" in proc.stderr and "sha256" in proc.stderr, proc.stderr
    assert not out.exists() and not (out.with_name("out.partial") / "unet" / "model.onnx").exists()


def test_a_connection_lost_mid_file_resumes(hub, tmp_path, monkeypatch):
    """huggingface_hub reads 10 MB at a time; bytes are kept (and resumed from) per read, so the
    tiny file stands in for a large one by reading 64 kB at a time."""
    from huggingface_hub import constants

    from sdlens.cpython.fetch import fetch

    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    hub.cut["unet/model.onnx"] = 1
    hub.requests.clear()
    out, said = tmp_path / "out", []
    fetch("sdlens-test/tiny-sd-onnx", out, endpoint=hub.endpoint, log=said.append)
    assert hub.cut["unet/model.onnx"] == 0  # it was cut …
    assert any("connection was lost" in line and "unet/model.onnx" in line for line in said), said
    size = len(hub.repos["sdlens-test/tiny-sd-onnx"].files["unet/model.onnx"])
    ranges = [r for method, path, r in hub.requests if path.startswith("/lfs/") and r]
    assert any(r.startswith("bytes=") and 0 < int(r[6:].split("-")[0]) < size for r in ranges), hub.requests
    assert (out / "unet" / "model.onnx").stat().st_size == size  # … and the rest asked for with Range


def test_unknown_repo_precision_from_bytes_per_parameter(optimum_export):  # noqa: F811
    from sdlens.hub.describe import precision_of_text_encoder

    config = json.loads((optimum_export / "text_encoder" / "config.json").read_text())
    fp32 = len(hub_repos.optimum_repo(optimum_export)["text_encoder/model.onnx"])
    fp16 = len(hub_repos.optimum_repo(optimum_export, fp16=True)["text_encoder/model.onnx"])
    assert precision_of_text_encoder(config, fp32) == "fp32" and precision_of_text_encoder(config, fp16) == "fp16"


def test_tokenizer_from_vocab_and_merges_equals_transformers(optimum_export):  # noqa: F811
    from transformers import CLIPTokenizerFast

    from sdlens.tokenizer import ClipTokenizer

    folder = optimum_export / "tokenizer"
    ours = ClipTokenizer.from_vocab_merges((folder / "vocab.json").read_text(), (folder / "merges.txt").read_text(),
                                           json.loads((folder / "tokenizer_config.json").read_text()))
    theirs = CLIPTokenizerFast.from_pretrained(folder)
    for prompt in ["a red cat on the left", "Hello, World!! 123 don't 😀 café", "word " * 100]:
        assert ours.encode(prompt).ids == theirs(prompt, padding="max_length", max_length=77, truncation=True).input_ids
    sd2 = ClipTokenizer.from_vocab_merges((folder / "vocab.json").read_text(), (folder / "merges.txt").read_text(),
                                          {"pad_token": "!"})
    assert sd2.encode("a cat").ids[-1] == 0  # SD 2.x pads with "!"


def test_layout_that_cannot_be_read_lists_what_was_found():
    from sdlens.hub.layouts import read_layout

    with pytest.raises(SdlensError, match=r"owner/odd.*unet/model\.onnx.*found: README\.md, weights\.bin"):
        read_layout("owner/odd", [{"path": "README.md", "bytes": 1}, {"path": "weights.bin", "bytes": 2}])
