"""`python -m sdlens tokenize|generate`: output, files written, and a clear error for bad input."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from sdlens.__main__ import main
from sdlens.cpython.runtime import OnnxRuntime
from sdlens.model import Model
from sdlens.pipeline import Pipeline, Settings

LONG_PROMPT = " ".join(f"word{i}" for i in range(100))


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_tokenize_table_and_json(capsys, tiny_model_dir):
    code, out, _ = run(capsys, "tokenize", "a photo of a cat", "--model", str(tiny_model_dir))
    assert code == 0
    assert "7 tokens" in out and "70 padding" in out and "photo</w>" in out and "(padding)" in out
    code, out, _ = run(capsys, "tokenize", "a photo of a cat", "--model", str(tiny_model_dir), "--json")
    data = json.loads(out)
    assert data["ids"][:7] == [49406, 320, 1125, 539, 320, 2368, 49407] and len(data["ids"]) == 77
    assert data["dropped_words"] == []


def test_tokenize_reports_dropped_words(capsys, tiny_model_dir):
    code, out, _ = run(capsys, "tokenize", LONG_PROMPT, "--model", str(tiny_model_dir), "--json")
    data = json.loads(out)
    assert data["dropped_words"][0] == "word28" and data["dropped_words"][-1] == "word99"


def test_generate_writes_image_frames_and_latents(capsys, tiny_model_dir, tmp_path):
    out_png, frames, latents = tmp_path / "out.png", tmp_path / "frames", tmp_path / "latents.npy"
    code, out, err = run(capsys, "generate", "a red circle", "--model", str(tiny_model_dir), "--seed", "42",
                         "--steps", "4", "--guidance", "7.5", "--scheduler", "dpmpp_2m", "--negative", "",
                         "--out", str(out_png), "--frames", str(frames), "--save-latents", str(latents))
    assert code == 0, err
    assert "backend onnxruntime" in out and "step   4/4" in out and "total" in out
    assert Image.open(out_png).size == (64, 64)
    assert sorted(p.name for p in frames.iterdir()) == [f"step_{i:03d}.png" for i in range(1, 5)]
    saved = np.load(latents)
    expected = Pipeline(Model.from_dir(str(tiny_model_dir)), OnnxRuntime()).generate(
        Settings("a red circle", "", 42, 4, 7.5, "dpmpp_2m"))
    assert saved.dtype == np.float32 and saved.shape == (1, 4, 16, 16)
    np.testing.assert_array_equal(saved, expected.latents)
    np.testing.assert_array_equal(np.asarray(Image.open(out_png)).tobytes(), expected.rgb)


def test_heun_karras_frames_name_each_unet_call(capsys, tiny_model_dir, tmp_path):
    frames, latents = tmp_path / "frames", tmp_path / "latents.npy"
    code, out, err = run(capsys, "generate", "a red circle", "--model", str(tiny_model_dir), "--seed", "3",
                         "--steps", "2", "--scheduler", "Heun", "--karras", "--out", str(tmp_path / "o.png"),
                         "--frames", str(frames), "--save-latents", str(latents))
    assert code == 0, err
    assert "Heun Karras, 2 steps (3 UNet calls)" in out
    assert "step   1/2 call 1/2" in out and "step   1/2 call 2/2" in out and "step   2/2  " in out
    assert sorted(p.name for p in frames.iterdir()) == ["step_001_1.png", "step_001_2.png", "step_002.png"]
    expected = Pipeline(Model.from_dir(str(tiny_model_dir)), OnnxRuntime()).generate(
        Settings("a red circle", "", 3, 2, 7.5, "heun", karras=True))
    np.testing.assert_array_equal(np.load(latents), expected.latents)


def test_empty_prompt_is_unconditional(capsys, tiny_model_dir, tmp_path):
    code, _, err = run(capsys, "generate", "", "--model", str(tiny_model_dir), "--steps", "2",
                       "--out", str(tmp_path / "o.png"))
    assert code == 0, err


def test_long_prompt_warns_with_dropped_words(capsys, tiny_model_dir, tmp_path):
    code, _, err = run(capsys, "generate", LONG_PROMPT, "--model", str(tiny_model_dir), "--steps", "1",
                       "--out", str(tmp_path / "o.png"))
    assert code == 0
    # one line with a count and where the cut starts, not every dropped word
    assert "warning: The prompt is longer than 77 tokens: the last 72 words are dropped (from “word28 word29 word30 word31 …”)." in err
    assert "word99" not in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--steps", "0"], "steps must be"),
        (["--steps", "1001"], "steps must be"),
        (["--steps", "ten"], "steps must be"),
        (["--guidance", "nan"], "guidance must be a number, 0 or more (7.5 is usual), not “nan”"),
        (["--guidance", "inf"], "guidance must be a number, 0 or more (7.5 is usual), not “inf”"),
        (["--guidance", "-1"], "guidance must be a number, 0 or more (7.5 is usual), not “-1”"),
        (["--guidance", "lots"], "guidance must be a number, 0 or more (7.5 is usual), not “lots”"),
        (["--scheduler", "dpm++"], "pndm, ddim, euler, euler_a, dpmpp_2m, unipc, lms, heun, ddpm, lcm"),
        (["--scheduler", "ddim", "--karras"], "karras sigmas are not available for DDIM"),
        (["--scheduler", "lcm", "--steps", "51"], "LCM allows at most 50 steps"),
        (["--seed", "abc"], "seed must be a whole number, 0 or more, not “abc”"),
        (["--seed", "-1"], "seed must be a whole number, 0 or more, not “-1”"),
        (["--seed", str(2**64)], "seed must be a whole number, 0 or more, and this one is too large"),
        (["--variant", "int4"], "no int4 variant"),
    ],
)
def test_bad_generate_input(capsys, tiny_model_dir, tmp_path, extra, message):
    code, _, err = run(capsys, "generate", "a circle", "--model", str(tiny_model_dir),
                       "--out", str(tmp_path / "o.png"), *extra)
    assert code == 2
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.png").exists()


def test_model_without_manifest(capsys, tmp_path):
    code, _, err = run(capsys, "generate", "x", "--model", str(tmp_path))
    assert code == 2 and "has no manifest.json" in err


def test_corrupted_model_file(capsys, tiny_model_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    unet = broken / "unet" / "model_fp32.onnx"
    data = bytearray(unet.read_bytes())
    data[len(data) // 2] ^= 0xFF
    unet.write_bytes(bytes(data))
    code, _, err = run(capsys, "generate", "x", "--model", str(broken), "--out", str(tmp_path / "o.png"))
    assert code == 2 and "unet/model_fp32.onnx does not match its sha256" in err


def test_no_traceback_from_the_real_command(tiny_model_dir, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sdlens", "generate", "x", "--model", str(tiny_model_dir),
                           "--steps", "-3"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("error: steps must be") and "Traceback" not in proc.stderr
