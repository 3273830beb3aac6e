"""The judge, on the renderer's own ground-truth pictures, must be (nearly) always right."""

import numpy as np
import pytest

from export.shapes import judge, scenes


@pytest.fixture(scope="module")
def classifier():
    import torch

    torch.set_num_threads(1)
    return judge.ShapeClassifier.load_or_train()


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_judge_reads_ground_truth_pictures(classifier, split):
    items = judge.prompt_set(300, split, seed=777)
    marks = [judge.score(judge.read_picture(scenes.render(scene), classifier), scene) for scene, _ in items]
    acc = judge.accuracy(marks)
    assert all(acc[a] >= 0.98 for a in judge.ATTRIBUTES), acc


def test_empty_picture_scores_nothing_but_background(classifier):
    scene = scenes.Scene("beige", (scenes.Shape("red", "circle", "large", "center"),))
    blank = np.full((64, 64, 3), scenes.BACKGROUNDS["beige"], np.uint8)
    marks = judge.score(judge.read_picture(blank, classifier), scene)
    assert marks == {"colour": False, "shape": False, "position": False, "size": False, "background": True}


def test_prompts_are_canonical_captions_of_their_split():
    for scene, prompt in judge.prompt_set(30, "heldout"):
        obj = scene.objects[0]
        assert (obj.colour, obj.shape) in scenes.HELD_OUT
        assert prompt == scenes.caption(scene)


def test_table_lists_every_attribute():
    acc = {a: 0.5 for a in (*judge.ATTRIBUTES, "all")}
    table = judge.format_table({"train": {7.5: acc}})
    assert "train" in table and "50.0%" in table and all(a in table for a in judge.ATTRIBUTES)
