"""Starting from a picture: sdlens on the exported tiny model equals diffusers'
StableDiffusionImg2ImgPipeline on the diffusers folder it came from (every scheduler, several
strengths, guidance on and off, a negative prompt, a picture of another shape), and the command
line's messages for pictures it cannot use."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from sdlens.__main__ import main
from sdlens.cpython.images import load_init_image
from sdlens.cpython.runtime import OnnxRuntime
from sdlens.errors import SdlensError
from sdlens.img2img import check_strength, composite_on_white, first_step
from sdlens.model import Model
from sdlens.pipeline import Pipeline, Settings
from sdlens.schedulers import DIFFUSERS_CLASSES, SCHEDULERS

from .test_generate_parity import diffusers_pipeline

DIFFUSERS_SCHEDULERS = {name: cls for cls, name in DIFFUSERS_CLASSES.items()}
STEPS = 8
SEED = 7
PROMPT = "a big red circle on the left, light blue background"
SIZE = 64  # the tiny model's width and height


def picture(width=SIZE, height=SIZE) -> Image.Image:
    """A deterministic test picture: a gradient with a red disc."""
    y, x = np.mgrid[0:height, 0:width]
    disc = (x - width / 3) ** 2 + (y - height / 2) ** 2 < (min(width, height) / 4) ** 2
    rgb = np.stack([np.where(disc, 220, x * 255 // width), np.where(disc, 30, y * 255 // height),
                    np.full_like(x, 160)], -1).astype(np.uint8)
    return Image.fromarray(rgb)


def init_image(image: Image.Image) -> dict:
    return {"width": image.width, "height": image.height, "rgba": image.convert("RGBA").tobytes()}


@pytest.fixture(scope="module")
def reference_pipe(tiny_pipeline_dir):
    from diffusers import StableDiffusionImg2ImgPipeline

    return diffusers_pipeline(StableDiffusionImg2ImgPipeline, tiny_pipeline_dir)


@pytest.fixture(scope="module")
def ours(tiny_model_dir):
    return Pipeline(Model.from_dir(str(tiny_model_dir)), OnnxRuntime())


def diffusers_img2img(pipe, scheduler, image, strength, guidance, negative):
    import diffusers

    pipe.scheduler = getattr(diffusers, DIFFUSERS_SCHEDULERS[scheduler]).from_config(pipe.scheduler.config)
    with torch.no_grad():
        latents = pipe(PROMPT, image=image, strength=strength, negative_prompt=negative, num_inference_steps=STEPS,
                       guidance_scale=guidance, generator=torch.Generator("cpu").manual_seed(SEED),
                       output_type="latent").images
        decoded = pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample
    return latents.numpy(), (decoded / 2 + 0.5).clamp(0, 1).numpy()


def assert_same(result, ref_latents, ref_image):
    latents = np.asarray(result.latents)
    assert latents.shape == ref_latents.shape
    assert np.abs(latents - ref_latents).max() <= 1e-3 * np.abs(ref_latents).max()
    ref_rgb = (ref_image[0].transpose(1, 2, 0) * 255).round().astype(np.uint8)
    got_rgb = np.frombuffer(result.rgb, np.uint8).reshape(ref_rgb.shape)
    assert np.abs(got_rgb.astype(int) - ref_rgb).max() <= 2


# strength → (guidance, negative prompt): each strength also covers one guidance case
CASES = {0.3: (1.0, None), 0.6: (7.5, "blurry, low quality"), 1.0: (7.5, None)}


@pytest.mark.parametrize("strength", list(CASES))
@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
def test_same_as_diffusers_img2img(reference_pipe, ours, scheduler, strength):
    guidance, negative = CASES[strength]
    image = picture()
    ref_latents, ref_image = diffusers_img2img(reference_pipe, scheduler, image, strength, guidance, negative)
    traces = []
    result = ours.generate(Settings(prompt=PROMPT, negative=negative or "", seed=SEED, steps=STEPS, guidance=guidance,
                                    scheduler=scheduler, init_image=init_image(image), strength=strength),
                           on_step=traces.append)
    assert_same(result, ref_latents, ref_image)
    start = result.start
    assert start.start_step == first_step(STEPS, strength) == STEPS - int(STEPS * strength)
    assert start.steps_run == int(STEPS * strength)
    # the trace counts from the full schedule: the first call that runs is start_index, at t_start
    assert traces[0].index == start.start_index and traces[0].timestep == start.t_start
    assert traces[0].step == start.start_step and traces[-1].step == STEPS - 1
    assert result.unet_calls == len(traces)


def test_non_square_picture_is_cropped_and_resized(reference_pipe, ours, tmp_path):
    """A 96×64 picture: the CLI's rule (centre crop to 64×64, then resize) and then the same as
    diffusers fed that cropped picture."""
    path = tmp_path / "wide.png"
    picture(96, 64).save(path)
    given, notes = load_init_image(path, SIZE, SIZE)
    assert notes == ["picture resized to the model's size: 96×64 → cropped to 64×64"]
    expected = picture(96, 64).crop((16, 0, 80, 64))
    assert given["rgba"] == expected.convert("RGBA").tobytes()
    ref_latents, ref_image = diffusers_img2img(reference_pipe, "euler_a", expected, 0.6, 7.5, None)
    result = ours.generate(Settings(prompt=PROMPT, seed=SEED, steps=STEPS, guidance=7.5, scheduler="euler_a",
                                    init_image=given, strength=0.6))
    assert_same(result, ref_latents, ref_image)

    path = tmp_path / "big.png"
    picture(300, 200).save(path)
    given, notes = load_init_image(path, SIZE, SIZE)
    assert notes == ["picture resized to the model's size: 300×200 → cropped to 200×200 → 64×64"]
    assert (given["width"], given["height"], len(given["rgba"])) == (SIZE, SIZE, SIZE * SIZE * 4)


def test_picture_at_model_size_is_used_as_it_is(tmp_path):
    path = tmp_path / "exact.png"
    picture().save(path)
    given, notes = load_init_image(path, SIZE, SIZE)
    assert notes == [] and given["rgba"] == picture().convert("RGBA").tobytes()


# ---- settings ------------------------------------------------------------------------------


def test_strength_rules():
    assert check_strength("0.5", 25) == 0.5
    for bad in (0, -0.1, 1.01, "abc", float("nan"), True):
        with pytest.raises(SdlensError, match="strength must be a number above 0 and at most 1"):
            check_strength(bad, 25)
    # diffusers' rule: int(steps · strength) steps run; none is an error that says what would run one
    with pytest.raises(SdlensError, match=r"strength 0.03 runs no step of 25 .*use strength 0.04 or more"):
        check_strength(0.03, 25)
    assert check_strength(0.04, 25) == 0.04


def test_settings_reject_unknown_keys_and_strength_without_picture():
    defaults = {"steps": 25, "guidance": 7.5, "scheduler": "ddim"}
    with pytest.raises(SdlensError, match=r"unknown setting 'strenght' \(did you mean 'strength'\?\)"):
        Settings.from_request({"prompt": "a", "strenght": 0.5}, defaults)
    with pytest.raises(SdlensError, match="unknown setting 'zzz'; known settings: prompt"):
        Settings.from_request({"zzz": 1}, defaults)
    with pytest.raises(SdlensError, match="strength needs a picture"):
        Settings.from_request({"prompt": "a", "strength": 0.5}, defaults).checked()


def test_init_image_checks_and_transparency(ours):
    s = Settings(prompt="a", steps=4, init_image={"width": 32, "height": 32, "rgba": b"\0" * 4096})
    with pytest.raises(SdlensError, match="init_image is 32×32 but this model works at 64×64"):
        ours.checked(s)
    s.init_image = {"width": SIZE, "height": SIZE, "rgba": b"\0" * 10}
    with pytest.raises(SdlensError, match="init_image.rgba has 10 bytes"):
        ours.checked(s)
    rgb, transparent = composite_on_white(bytes([200, 100, 0, 255, 200, 100, 0, 0, 0, 0, 0, 128]))
    assert transparent == 2 and list(rgb) == [200, 100, 0, 255, 255, 255, 127, 127, 127]


# ---- the command line ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """Pictures the command line must refuse or convert, each with the words its message has."""
    folder = tmp_path_factory.mktemp("pictures")
    (folder / "notes.txt").write_text("not a picture at all")
    (folder / "empty.png").write_bytes(b"")
    good = folder / "good.png"
    picture().save(good)
    data = good.read_bytes()
    (folder / "corrupt.png").write_bytes(data[:60] + b"\x00" * 40 + data[100:])
    (folder / "cut.png").write_bytes(data[: len(data) // 2])
    rgba = picture().convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((SIZE, SIZE)))
    rgba.save(folder / "transparent.png")
    picture().convert("L").save(folder / "grey.jpg")
    picture().convert("CMYK").save(folder / "cmyk.jpg")
    Image.new("RGB", (8000, 8000), (30, 120, 200)).save(folder / "huge.jpg", quality=50)
    return folder


@pytest.mark.parametrize("name, message", [
    ("missing.png", "no such file"),
    ("notes.txt", "notes.txt is not a picture"),
    ("empty.png", "empty.png is an empty file, not a picture"),
    ("corrupt.png", "corrupt.png is damaged and cannot be read"),
    ("cut.png", "cut.png is damaged and cannot be read"),
])
def test_cli_refuses_what_is_not_a_picture(tiny_model_dir, pictures, tmp_path, capsys, name, message):
    code = main(["generate", "x", "--model", str(tiny_model_dir), "--steps", "2", "--init-image",
                 str(pictures / name), "--out", str(tmp_path / "out.png")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("name, note", [
    ("transparent.png", "transparent parts; they are put on a white background"),
    ("grey.jpg", "greyscale"),
    ("cmyk.jpg", "CMYK"),
    ("huge.jpg", "8000×8000 → 64×64"),
])
def test_cli_converts_and_says_so(tiny_model_dir, pictures, tmp_path, capsys, name, note):
    out = tmp_path / "out.png"
    code = main(["generate", "x", "--model", str(tiny_model_dir), "--steps", "2", "--strength", "0.5",
                 "--init-image", str(pictures / name), "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and printed.count(note) == 1
    assert Image.open(out).size == (SIZE, SIZE)


def test_huge_jpeg_is_decoded_small(pictures):
    """An 8000×8000 JPEG is decoded at ⅛ size (draft mode): its full-size pixels are never held."""
    given, _ = load_init_image(pictures / "huge.jpg", SIZE, SIZE)
    assert np.frombuffer(given["rgba"], np.uint8).reshape(SIZE, SIZE, 4)[..., :3].mean(axis=(0, 1)).round().tolist() \
        == pytest.approx([30, 120, 200], abs=3)


@pytest.mark.parametrize("args, message", [
    (["--strength", "0"], "strength must be a number above 0 and at most 1, got '0'"),
    (["--strength", "1.5"], "strength must be a number above 0 and at most 1"),
    (["--strength", "0.1", "--steps", "5"], "strength 0.1 runs no step of 5"),
])
def test_cli_strength_errors(tiny_model_dir, pictures, capsys, args, message):
    code = main(["generate", "x", "--model", str(tiny_model_dir), "--init-image", str(pictures / "good.png"), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err


def test_cli_strength_needs_a_picture(tiny_model_dir, capsys):
    assert main(["generate", "x", "--model", str(tiny_model_dir), "--strength", "0.5"]) == 2
    assert "strength needs a picture" in capsys.readouterr().err


def test_cli_unknown_option_is_named(tiny_model_dir, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["generate", "x", "--model", str(tiny_model_dir), "--strenght", "0.5"])
    assert exit_.value.code == 2
    assert "unknown option or argument: '--strenght' (did you mean --strength?)" in capsys.readouterr().err


def test_cli_model_without_encoder(tiny_model_dir, pictures, tmp_path, capsys):
    folder = tmp_path / "no-encoder"
    shutil.copytree(tiny_model_dir, folder, ignore=shutil.ignore_patterns("vae_encoder"))
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["components"]["vae_encoder"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    code = main(["generate", "x", "--model", str(folder), "--steps", "2", "--init-image", str(pictures / "good.png")])
    err = capsys.readouterr().err
    assert code == 2 and "has no VAE encoder, so it cannot start from a picture" in err
    # and it still draws from noise
    assert main(["generate", "x", "--model", str(folder), "--steps", "2", "--out", str(tmp_path / "o.png")]) == 0
