"""The committed models: models/objects (the embedded default, what a first visit opens) and
models/shapes (the composition lab). Each loads, carries the card its world writes, and draws what
it is told."""

import json

import pytest

from tests.conftest import OBJECTS, ROOT

MODEL = ROOT / "models" / "shapes"
pytestmark = pytest.mark.skipif(not (MODEL / "manifest.json").is_file() or not (OBJECTS / "manifest.json").is_file(),
                                reason="the embedded models are not built")


def test_objects_is_the_default_and_both_verify():
    from sdlens.model import Model, list_models, resolve_model_dir

    assert resolve_model_dir(None, str(ROOT / "models")) == str(OBJECTS)
    assert sorted(list_models(str(ROOT / "models"))) == sorted([str(MODEL), str(OBJECTS)])
    for folder in (MODEL, OBJECTS):
        model = Model.from_dir(str(folder))  # checks every file's sha256
        assert model.defaults["steps"] == 25 and model.defaults["guidance"] == 7.5 and model.defaults["scheduler"] == "ddim"
        assert model.manifest["starter_prompts"] and model.manifest["prompt_pairs"]


def test_objects_manifest_is_what_its_world_writes():
    """The page's card, starters, pairs and held-out lesson for the objects model come from
    export/objects/world.py (the source of truth), and a starter shows a held-out pair off."""
    from export.objects import scenes
    from export.objects.world import extras

    manifest = json.loads((OBJECTS / "manifest.json").read_text())
    written = extras()
    assert all(manifest[key] == value for key, value in written.items() if key != "defaults")
    assert manifest["held_out_kind"] == "object+place" and set(manifest["place_phrases"]) == set(scenes.POSITIONS)
    assert {tuple(pair) for pair in manifest["held_out_pairs"]} == set(scenes.HELD_OUT)
    card = manifest["model_card"]
    assert "cat" in card["vocabulary"] and "circle" not in card["vocabulary"]
    for credit in ("Apache-2.0", "CC-BY-4.0", "MIT"):
        assert any(credit in line for line in card["licences"]), credit
    assert any(f"{name} {manifest['place_phrases'][place]}" in prompt
               for prompt in manifest["starter_prompts"] for name, place in scenes.HELD_OUT)


def test_model_card_is_the_one_its_world_describes():
    """The committed manifest carries the card `train-tiny` writes today (scenes.py is the source of truth)."""
    import json

    from export.shapes import scenes
    from export.shapes.train import extras

    manifest = json.loads((MODEL / "manifest.json").read_text())
    card = manifest["model_card"]
    assert card == extras()["model_card"]
    assert card["vocabulary"] == scenes.vocabulary() and "puppy" not in card["vocabulary"]
    assert sorted(map(tuple, card["held_out"])) == sorted(scenes.HELD_OUT)
    assert manifest["description"] == extras()["description"]


def test_manifest_names_the_held_out_pairs_of_its_training_data():
    """The page's generalisation lesson reads these: they must be the pairs training left out."""
    import json

    from export.shapes import scenes

    manifest = json.loads((MODEL / "manifest.json").read_text())
    assert {tuple(pair) for pair in manifest["held_out_pairs"]} == set(scenes.HELD_OUT)
    # What the manifest tells the page about this model is what training writes (extras()).
    from export.shapes.train import extras

    assert all(manifest[key] == value for key, value in extras().items() if key != "defaults")
    # A starter shows one of them off (the page marks it "never seen in training").
    assert any(f"{colour} {shape}" in prompt for prompt in manifest["starter_prompts"]
               for colour, shape in scenes.HELD_OUT)


@pytest.mark.parametrize("folder, most", [(MODEL, 25_000_000), (OBJECTS, 40_000_000)], ids=["shapes", "objects"])
def test_browser_download_is_small(folder, most):
    from sdlens.model import Model

    model = Model.from_dir(str(folder), verify=False)
    for variant in model.manifest["components"]["unet"]["variants"]:
        model.use_variant(variant)
        # What the browser fetches: the tokenizer, then the three graphs it runs (not the encoder).
        total = model.manifest["tokenizer"]["file"]["bytes"] + sum(
            f["bytes"] for c in ("text_encoder", "unet", "vae_decoder") for f in model.graph(c)["files"])
        assert total <= most, (variant, total)


@pytest.fixture(scope="module")
def short_judge_run():
    import torch

    from export.shapes import judge

    torch.set_num_threads(1)
    results = judge.judge_model(str(MODEL), prompts=20, steps=10, guidances=(7.5,), progress=False)
    return results["train"][7.5], judge.chance()


@pytest.mark.parametrize("attribute", ["colour", "background", "position", "shape"])
def test_short_judge_run_is_well_above_chance(short_judge_run, attribute):
    acc, chance = short_judge_run
    assert acc[attribute] >= min(0.6, 3 * chance[attribute]), (attribute, acc)
