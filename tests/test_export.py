"""`export convert`: every graph of every variant loads, matches PyTorch, and is described truly."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
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
    # The manifest's parity report is what we just measured. onnxruntime's threaded reductions are not
    # bit-reproducible from run to run, so fp32 errors of a few 1e-6 may differ by a few 1e-7 between runs.
    assert entry["parity"]["max_abs_err"] == pytest.approx(err, rel=1e-3, abs=1e-6 * float(np.abs(expected).max()))


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
    assert manifest["defaults"] == {"steps": 25, "guidance": 7.5, "scheduler": "ddim", "karras": False, "width": 64,
                                    "height": 64, "negative": ""}
    unet = manifest["components"]["unet"]["variants"]["fp32"]
    assert [i["name"] for i in unet["inputs"]] == ["sample", "timestep", "encoder_hidden_states"]
    assert unet["outputs"][0]["name"] == "out_sample"
    assert manifest["components"]["unet"]["variants"]["fp16"]["backends"] == ["webgpu-f16"]
    assert manifest["components"]["unet"]["variants"]["int8"]["backends"] == ["wasm"]
    assert manifest["tokenizer"]["max_length"] == 77


def test_the_file_limit_is_what_a_browser_can_take():
    """Measured in Chromium (see /work/shared/notes/fullsize.md): crypto.subtle.digest rejected a
    3.46 GB buffer and passed a 1.36 GB one; one ArrayBuffer caps near 2 GB. Each file is hashed,
    cached and handed to onnxruntime-web on its own, so the limit is per file, with a wide margin."""
    assert variants.MAX_FILE_BYTES == 512 * 2**20
    assert variants.MAX_FILE_BYTES < 1.36e9 / 2 < 2**31


SPLIT_LIMIT = 1 << 20  # 1 MiB: the tiny model's graphs each become a graph file and several data files


def write_taesd(out: Path, upsamplings: int) -> Path:
    """A random-weight TAESD (diffusers AutoencoderTiny): the real one upsamples 3 times (8×)."""
    from diffusers import AutoencoderTiny

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    blocks = upsamplings + 1
    AutoencoderTiny(encoder_block_out_channels=(16,) * blocks, decoder_block_out_channels=(16,) * blocks,
                    num_encoder_blocks=(1,) * blocks, num_decoder_blocks=(1,) * blocks).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_taesd(tmp_path_factory):
    return write_taesd(tmp_path_factory.mktemp("taesd") / "taesd-4x", upsamplings=2)  # the tiny VAE's 4×


@pytest.fixture(scope="module")
def split_model(tiny_pipeline_dir, tiny_taesd, tmp_path_factory):
    """Every variant at a 1 MiB file limit, with a preview decoder."""
    out = tmp_path_factory.mktemp("split") / "tiny-split"
    manifest = convert(str(tiny_pipeline_dir), out, ALL_VARIANTS, quiet=True, max_file_bytes=SPLIT_LIMIT,
                       preview_decoder=str(tiny_taesd))
    return out, manifest


def test_large_graphs_are_split_under_the_limit(split_model, references, tiny_taesd):
    from export import preview
    from export.preview import load_preview_decoder

    out, manifest = split_model
    references = {**references, "preview_decoder": preview.reference(load_preview_decoder(str(tiny_taesd)), 16)}
    assert manifest["max_file_bytes"] == SPLIT_LIMIT
    for component, entry in manifest["components"].items():
        for variant, graph in entry["variants"].items():
            files = graph["files"]
            assert all(f["bytes"] <= SPLIT_LIMIT for f in files), (component, variant)
            graph_name = f"model_{variant}.onnx"
            assert [f["path"] for f in files] == [f"{component}/{graph_name}"] + [
                f"{component}/model_{variant}-{i:02d}.onnx_data" for i in range(len(files) - 1)]
            # Every data file is named by the graph under its base name (how both runtimes pass them).
            model = onnx.load(str(out / files[0]["path"]), load_external_data=False)
            locations = {e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"}
            assert locations == {Path(f["path"]).name for f in files[1:]}
            report = parity.check(out / files[0]["path"], references[component])
            assert report["rel_err"] <= TOLERANCE[variant], (component, variant, report)
    # The 6.3 MB token embedding is over the limit: it became row blocks, and the fp32 UNet spans several files.
    assert len(manifest["components"]["text_encoder"]["variants"]["fp32"]["files"]) >= 7
    assert len(manifest["components"]["unet"]["variants"]["fp32"]["files"]) >= 4


def test_q4_from_the_fp16_file_equals_q4_from_fp32(split_model, references, tmp_path):
    """convert builds q4 from the fp16 variant it already wrote (here spread over several files),
    not from fp32 again (memory); the result must compute what the long way round computes."""
    out, _ = split_model
    for component in ("text_encoder", "unet"):
        long_way = variants.write_variant("q4", out / component / "model_fp32.onnx", tmp_path / f"{component}.onnx",
                                          SPLIT_LIMIT)
        ops = [{n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node} - {"Concat"}
               for path in (long_way[0], out / component / "model_q4.onnx")]
        assert ops[0] == ops[1] and "MatMulNBits" in ops[1]
        feeds, _ = references[component]
        got = [ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
               for path in (long_way[0], out / component / "model_q4.onnx")]
        np.testing.assert_allclose(got[1], got[0], rtol=0, atol=1e-6 * np.abs(got[0]).max())


def test_int8_without_the_quantizers_copies_is_onnxruntimes_int8(split_model, tmp_path):
    """to_int8 spares onnxruntime's quantizer its three copies of the weights (memory at SD size);
    the graph and the quantized weights must be exactly what the quantizer makes on its own."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out, _ = split_model
    for component in ("text_encoder", "unet"):
        src = out / component / "model_fp32.onnx"
        ours = onnx.load(str(variants.to_int8(src, tmp_path / f"{component}-ours.onnx")[0]))
        quantize_dynamic(str(src), str(tmp_path / f"{component}-theirs.onnx"), weight_type=QuantType.QUInt8,
                         use_external_data_format=True)
        theirs = onnx.load(str(tmp_path / f"{component}-theirs.onnx"))
        assert [(n.op_type, list(n.input), list(n.output)) for n in ours.graph.node] == \
            [(n.op_type, list(n.input), list(n.output)) for n in theirs.graph.node]
        assert "DynamicQuantizeLinear" in {n.op_type for n in ours.graph.node}
        weights = {t.name: onnx.numpy_helper.to_array(t) for t in theirs.graph.initializer}
        assert {t.name for t in ours.graph.initializer} == set(weights)
        for t in ours.graph.initializer:
            np.testing.assert_array_equal(onnx.numpy_helper.to_array(t), weights[t.name])


def test_output_holds_only_listed_world_readable_files(split_model, tiny_model_dir):
    from export.convert import listed_files

    for out, manifest in [split_model, (tiny_model_dir, json.loads((tiny_model_dir / "manifest.json").read_text()))]:
        present = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
        assert present == sorted(listed_files(manifest) + ["manifest.json"])
        assert out.stat().st_mode & 0o777 == 0o755
        for p in out.rglob("*"):
            assert p.stat().st_mode & 0o777 == (0o755 if p.is_dir() else 0o644), p


def test_preview_decoder_entry(split_model):
    out, manifest = split_model
    entry = manifest["components"]["preview_decoder"]
    assert entry["scaling_factor"] == 1.0 and entry["output_range"] == [-1.0, 1.0]
    assert entry["architecture"].startswith("AutoencoderTiny")
    assert list(entry["variants"]) == ALL_VARIANTS
    fp32 = entry["variants"]["fp32"]
    assert [i["name"] for i in fp32["inputs"]] == ["latent_sample"] and fp32["inputs"][0]["shape"][1] == 4
    assert [o["name"] for o in fp32["outputs"]] == ["sample"] and fp32["outputs"][0]["shape"][1] == 3
    assert fp32["backends"] == variants.BACKENDS["fp32"] and fp32["parity"]["rel_err"] < 1e-5


def test_preview_decoder_is_used_as_diffusers_uses_taesd(split_model, tiny_pipeline_dir, tiny_taesd):
    """diffusers' own pipeline with the TAESD as its VAE (latents / its scaling_factor, then
    postprocess from [-1, 1]) gives the pixels the manifest's recipe gives with our graph."""
    import torch
    from diffusers import AutoencoderTiny

    out, manifest = split_model
    entry = manifest["components"]["preview_decoder"]
    pipe = load_pipeline(str(tiny_pipeline_dir))
    pipe.vae = AutoencoderTiny.from_pretrained(tiny_taesd)
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        latents = pipe("a red circle", num_inference_steps=2, generator=generator, output_type="latent").images
        expected = pipe.image_processor.postprocess(pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample,
                                                    output_type="np")
    session = ort.InferenceSession(str(out / entry["variants"]["fp32"]["files"][0]["path"]),
                                   providers=["CPUExecutionProvider"])
    (raw,) = session.run(None, {"latent_sample": latents.numpy() / entry["scaling_factor"]})
    low, high = entry["output_range"]
    pixels = np.clip((raw - low) / (high - low), 0, 1).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(pixels, expected, atol=1e-5)


def test_a_preview_decoder_of_the_wrong_scale_is_refused(tiny_pipeline_dir, tmp_path):
    taesd = write_taesd(tmp_path / "taesd-8x", upsamplings=3)
    proc = run_export("convert", str(tiny_pipeline_dir), "--out", str(tmp_path / "m"), "--preview-decoder", str(taesd))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == ("error: the preview decoder upsamples latents 8×; "
                                                    "this model's VAE 4×"), proc.stderr
    assert not (tmp_path / "m").exists()


def test_a_tensor_too_big_to_split_is_named(tmp_path):
    from onnx import helper, numpy_helper

    from sdlens.errors import SdlensError

    weight = numpy_helper.from_array(np.ones((1, 40_000), np.float32), "w")  # one 160 KB row
    graph = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 40_000])], [weight])
    with pytest.raises(SdlensError, match="tensor w .* cannot be split under the 65536-byte file limit"):
        variants.save(helper.make_model(graph), tmp_path / "m.onnx", max_file_bytes=1 << 16)


def test_killed_export_is_cleaned_up_by_the_next_run(tiny_pipeline_dir, tmp_path, capfd):
    """kill -9 mid-export leaves its hidden work folder; the next export of the same OUT removes it."""
    import signal
    import time

    out = tmp_path / "m"
    proc = subprocess.Popen([sys.executable, "-m", "export", "convert", str(tiny_pipeline_dir), "--out", str(out),
                             "--variants", "fp32,fp16", "--quiet"], cwd=ROOT, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".m.tmp-*/model/unet")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (stale,) = tmp_path.glob(".m.tmp-*")
    live = tmp_path / ".m.tmp-live"  # another export still running (this process) is left alone
    live.mkdir()
    (live / ".owner-pid").write_text(f"{os.getppid()}\n")
    capfd.readouterr()
    convert(str(tiny_pipeline_dir), out, ["fp32"])
    stderr = capfd.readouterr().err
    assert not stale.exists() and live.exists()
    assert f"removed {stale}" in stderr and "left by an earlier run" in stderr
    assert f"{live}" in stderr and "still running" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [".m.tmp-live", "m"]


def test_failed_export_leaves_nothing(tiny_pipeline_dir, tmp_path, monkeypatch):
    calls = []

    def failing(variant, *args, **kwargs):
        calls.append(variant)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return variants.write_variant(variant, *args, **kwargs)

    monkeypatch.setattr("export.convert.write_variant", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        convert(str(tiny_pipeline_dir), tmp_path / "model", ["fp32", "fp16"], quiet=True)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_export_keeps_the_old_model(tiny_pipeline_dir, tiny_model_dir, tmp_path, monkeypatch):
    out = tmp_path / "model"
    out.mkdir()
    (out / "manifest.json").write_text("old")

    def interrupted(*args, **kwargs):
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
    proc = run_export("convert", str(tiny_pipeline_dir), "--out", str(out), "--variants", "int8", "--force",
                      "--max-file-mib", "0.75")
    assert proc.returncode == 0, proc.stderr
    assert "parity vs PyTorch" in proc.stdout
    assert "text_encoder" in proc.stderr  # the progress bars
    assert not (out / "stale.txt").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest["components"]["unet"]["variants"]) == ["int8"]
    unet = manifest["components"]["unet"]["variants"]["int8"]["files"]
    assert len(unet) >= 3 and all(f["bytes"] <= 0.75 * 2**20 for f in unet)
    assert not list(out.rglob("*.onnx.data"))  # quantize_dynamic's own layout never reaches the output


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

    batches = []
    vae = ColourVAE()
    encode = vae.encode
    vae.encode = lambda images: batches.append(images.shape[0]) or encode(images)
    fitted = fit_latent_rgb(vae, 32)
    assert batches == [1] * 12  # one image at a time: at 512² a batch of 24 took over 16 GB
    weights, bias = np.array(fitted["weights"]), np.array(fitted["bias"])
    # rgb = (latent + 1) / 2 per channel
    np.testing.assert_allclose(weights[:3], np.eye(3) * 0.5, atol=1e-4)
    assert len(manifest["latent_rgb"]["weights"]) == 4 and len(manifest["latent_rgb"]["bias"]) == 3


def test_preview_pool_sizes():
    from export.preview import preview_pool

    assert [preview_pool(px) for px in (64, 256, 511, 512, 768, 1023, 1024)] == [1, 1, 1, 2, 2, 2, 4]


@pytest.mark.parametrize("pool", [1, 2])
def test_preview_is_taesd_on_the_averaged_latent(tiny_taesd, tmp_path, pool):
    """The runtime averages the latent over pool² cells (its pool op), the graph decodes: a picture
    pool times smaller, as PyTorch draws it; pool 1 is the fast decoder's full-size picture."""
    import torch

    from export import preview
    from sdlens.cpython.runtime import OnnxRuntime

    taesd = preview.load_preview_decoder(str(tiny_taesd))
    path = preview.export_fp32(taesd, 16, tmp_path / "model.onnx")
    latent = np.random.default_rng(0).standard_normal((1, 4, 16, 16)).astype(np.float32)
    runtime = OnnxRuntime()
    fed = runtime.pool(latent, pool) if pool > 1 else latent
    (got,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"latent_sample": fed})
    with torch.no_grad():
        want = preview.decode(taesd, torch.from_numpy(latent), pool).numpy()
    assert got.shape == (1, 3, 64 // pool, 64 // pool) and np.abs(got - want).max() < 1e-5
