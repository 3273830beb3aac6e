"""The objects world: its data step (emoji sets from npm), captions and held-out pairs, the trainer
on it at toy size, and its judge on the world's own rendered pictures."""

import json
import random

import numpy as np
import pytest

from sdlens.errors import SdlensError


# -- the data step ------------------------------------------------------------------------------------

def test_a_missing_emoji_set_is_a_clear_error_not_a_smaller_world(tmp_path, monkeypatch):
    from export.objects import icons

    real = icons.node_modules()
    # Two of the three sets present, one missing: the world must refuse, naming the missing set.
    for name in ("noto", "twemoji"):
        (tmp_path / "@iconify-json" / name).mkdir(parents=True)
        (tmp_path / "@iconify-json" / name / "icons.json").write_bytes(
            (real / "@iconify-json" / name / "icons.json").read_bytes())
    monkeypatch.setenv(icons.NODE_MODULES_ENV, str(tmp_path))
    with pytest.raises(SdlensError, match=r"@iconify-json/fluent-emoji-flat is missing.*npm ci"):
        icons.icons()


def test_a_set_without_one_of_the_objects_is_named_with_the_missing_icon(tmp_path, monkeypatch):
    from export.objects import icons

    real = icons.node_modules()
    for name in icons.SETS:
        data = json.loads((real / "@iconify-json" / name / "icons.json").read_text())
        if name == "twemoji":
            del data["icons"]["cat-face"]
        (tmp_path / "@iconify-json" / name).mkdir(parents=True)
        (tmp_path / "@iconify-json" / name / "icons.json").write_text(json.dumps(data))
    monkeypatch.setenv(icons.NODE_MODULES_ENV, str(tmp_path))
    with pytest.raises(SdlensError, match=r"twemoji lacks cat-face"):
        icons.icons()


def test_every_object_is_drawn_by_every_set_and_the_drawings_differ():
    from export.objects import icons

    drawings = icons.icons()
    assert len(drawings) >= 20 and set(icons.SETS) == {"noto", "twemoji", "fluent-emoji-flat"}
    for word, by_set in drawings.items():
        assert set(by_set) == set(icons.SETS)
        for rgba in by_set.values():
            assert rgba.shape == (icons.ICON_PIXELS, icons.ICON_PIXELS, 4)
            assert 0.05 < (rgba[..., 3] > 128).mean() < 0.95, word  # something drawn, not the whole square
        a, b = (by_set[s].astype(int) for s in ("noto", "twemoji"))
        assert np.abs(a - b).mean() > 5, f"{word}: two sets drew the same picture"


# -- the world ---------------------------------------------------------------------------------------

def test_captions_use_only_the_vocabulary_and_name_what_is_drawn():
    from export.objects import scenes
    from export.shapes.scenes import words

    vocab = set(scenes.vocabulary())
    two = 0
    for scene, text in scenes.dataset(400, seed=3):
        assert set(words(text)) <= vocab, text
        for obj in scene.objects:
            assert obj.name in words(text)
        two += len(scene.objects) == 2
    assert 50 < two < 150  # about a quarter are two-object scenes
    canonical = scenes.caption(scenes.Scene("light blue", (scenes.Thing("cat", "large", "left"),
                                                            scenes.Thing("tree", "small", "right"))))
    assert canonical == "a big cat on the left and a small tree on the right, light blue background"
    assert scenes.caption(scenes.Scene("gray", (scenes.Thing("apple", "small", "center"),))) == \
        "a small apple in the center, gray background"


def test_held_out_pairs_never_appear_in_training_but_their_parts_do():
    from export.objects import scenes

    seen_pairs, seen_names, seen_places = set(), set(), set()
    for scene, _ in scenes.dataset(3000, seed=0):
        for obj in scene.objects:
            seen_pairs.add((obj.name, obj.position))
            seen_names.add(obj.name)
            seen_places.add(obj.position)
    assert not seen_pairs & scenes.HELD_OUT
    for name, place in scenes.HELD_OUT:
        assert name in seen_names and place in seen_places
    held = [s.objects[0] for s, _ in scenes.dataset(200, seed=0, split="heldout")]
    assert all((o.name, o.position) in scenes.HELD_OUT for o in held)


def test_rendering_is_deterministic_and_puts_the_object_in_its_place():
    from export.objects import scenes

    rng = random.Random(5)
    scene = scenes.sample_scene(rng, two_objects=0.0)
    assert np.array_equal(scenes.render(scene), scenes.render(scene))
    left = scenes.render(scenes.Scene("white", (scenes.Thing("house", "small", "left"),))).astype(int)
    drawn = np.abs(left - 248).sum(axis=2) > 60
    ys, xs = np.nonzero(drawn)
    assert xs.mean() < 64 / 3 and 64 / 3 < ys.mean() < 2 * 64 / 3


# -- training at toy size ------------------------------------------------------------------------------

def test_trains_the_objects_world_end_to_end_and_logs_its_curve(tmp_path, monkeypatch):
    import torch

    from export.shapes import train

    torch.set_num_threads(1)
    monkeypatch.setattr(train, "CURVE_EVERY", 2)
    curve = tmp_path / "curve.jsonl"
    train.train_tiny(tmp_path / "objects", minutes=5, world="objects", config="reduced", vae_steps=4, unet_steps=6,
                     quiet=True, threads=1, curve=curve)
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tmp_path / "objects", local_files_only=True)
    assert type(pipe.unet).__name__ == "UNet2DConditionModel" and pipe.unet.config.sample_size == 8
    extras = json.loads((tmp_path / "objects" / "sdlens_extras.json").read_text())
    card = extras["model_card"]
    assert "cat" in card["vocabulary"] and "circle" not in card["vocabulary"]
    assert any("Twemoji" in credit and "CC-BY-4.0" in credit for credit in card["licences"])
    from export.objects import scenes

    assert {tuple(p) for p in extras["held_out_pairs"]} == set(scenes.HELD_OUT)
    lines = [json.loads(line) for line in curve.read_text().splitlines()]
    assert [line["step"] for line in lines if line["stage"] == "unet"] == [2, 4, 6]
    assert any("psnr_db" in line for line in lines)


def test_resuming_the_objects_world_under_bf16_gives_the_same_model(tmp_path, monkeypatch):
    import torch
    from safetensors.numpy import load_file

    from export.shapes import train

    torch.set_num_threads(1)
    monkeypatch.setattr(train, "CHECKPOINT_EVERY_S", 0)
    fixed = dict(minutes=5, world="objects", config="reduced", vae_steps=4, unet_steps=6, quiet=True, threads=1)
    train.train_tiny(tmp_path / "straight", **fixed)
    original, calls = train.Trainer._unet_step, {"n": 0}

    def interrupting(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4 + 3:  # 4 timed planning steps, then 2 real ones, then stop
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(train.Trainer, "_unet_step", interrupting)
    with pytest.raises(KeyboardInterrupt):
        train.train_tiny(tmp_path / "resumed", **fixed)
    monkeypatch.setattr(train.Trainer, "_unet_step", original)
    train.train_tiny(tmp_path / "resumed", **fixed)
    part = "unet/diffusion_pytorch_model.safetensors"
    a, b = load_file(tmp_path / "straight" / part), load_file(tmp_path / "resumed" / part)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_a_weights_only_snapshot_is_the_run_and_is_replaced_only_when_clearly_better(tmp_path, monkeypatch):
    """A run stopped mid-UNet (its checkpoint) → export/objects/snapshot.py's fp16 file → a pipeline
    that draws what the checkpoint's EMA weights draw; a score not clearly above the kept one keeps it."""
    import torch

    from export.objects.judge import load_pipeline
    from export.objects.snapshot import kept_scores, write_snapshot
    from export.shapes import train

    torch.set_num_threads(1)
    monkeypatch.setattr(train, "CHECKPOINT_EVERY_S", 0)
    original, calls = train.Trainer._unet_step, {"n": 0}

    def interrupting(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4 + 3:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(train.Trainer, "_unet_step", interrupting)
    with pytest.raises(KeyboardInterrupt):
        train.train_tiny(tmp_path / "run", minutes=5, world="objects", config="reduced", vae_steps=4, unet_steps=6,
                         quiet=True, threads=1)
    file = tmp_path / "snapshot.safetensors"
    scores = {"objects_object": 0.5, "objects_place": 0.9, "heldout_object": 0.4, "heldout_place": 0.8}
    assert write_snapshot(tmp_path / "run", scores, file).startswith("wrote ")
    assert kept_scores(file) == scores
    assert write_snapshot(tmp_path / "run", {**scores, "objects_object": 0.53}, file).startswith("kept ")

    def draw(pipe):
        with torch.no_grad():
            return pipe("a cat on the left", num_inference_steps=3, generator=torch.Generator().manual_seed(0),
                        output_type="np").images[0]

    from_run, from_file = draw(load_pipeline(tmp_path / "run")), draw(load_pipeline(file))
    assert np.abs(from_run - from_file).max() < 0.03  # fp16 weights, computed in fp32


# -- the judge ---------------------------------------------------------------------------------------

def test_the_judge_reads_rendered_pictures_it_never_trained_on():
    from export.objects import scenes
    from export.objects.judge import ObjectClassifier, PLACES

    clf = ObjectClassifier.load_or_train()  # the committed cache (trained on rendered pictures only)
    images, what, where = ObjectClassifier.training_data(300, seed=101)  # another seed: unseen pictures
    readings = clf.read(images)
    objects = np.mean([got == scenes.OBJECTS[w] for (got, _), w in zip(readings, what)])
    places = np.mean([got == PLACES[w] for (_, got), w in zip(readings, where)])
    assert objects > 0.85 and places > 0.95, (objects, places)


def test_scores_count_object_place_and_both_per_object():
    from export.objects import scenes
    from export.objects.judge import prompt_set, score

    sets = prompt_set(seeds=2)
    assert len(sets["objects"]) == 2 * len(scenes.OBJECTS) and len(sets["heldout"]) == 2 * len(scenes.HELD_OUT)
    assert all((s.objects[0].name, s.objects[0].position) in scenes.HELD_OUT for s, _ in sets["heldout"])
    assert not any((s.objects[0].name, s.objects[0].position) in scenes.HELD_OUT for s, _ in sets["objects"])
    truths = [scenes.Scene("white", (scenes.Thing("cat", "small", "left"),)),
              scenes.Scene("white", (scenes.Thing("dog", "small", "top"),))]
    result = score([("cat", "right"), ("dog", "top")], truths)
    assert result["all"] == {"object": 1.0, "place": 0.5, "both": 0.5, "n": 2}
    assert result["per_object"]["cat"]["place"] == 0.0 and result["per_object"]["dog"]["both"] == 1.0
