"""The captioned-shapes renderer: deterministic, captions say what is drawn, held-out pairs stay out."""

import random

import numpy as np

from export.shapes import scenes


def test_same_seed_same_scenes_captions_and_pixels():
    a, b = scenes.dataset(40, seed=3), scenes.dataset(40, seed=3)
    assert a == b
    assert np.array_equal(scenes.render_many([s for s, _ in a]), scenes.render_many([s for s, _ in b]))
    assert scenes.dataset(40, seed=4) != a


def test_render_is_an_rgb_picture_with_the_background_at_its_border():
    scene = scenes.Scene("light blue", (scenes.Shape("red", "star", "large", "center"),))
    image = scenes.render(scene)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert tuple(image[0, 0]) == scenes.BACKGROUNDS["light blue"]
    assert tuple(image[32, 32]) == scenes.COLOURS["red"]


def test_each_shape_draws_something_different():
    masks = []
    for shape in scenes.SHAPES:
        image = scenes.render(scenes.Scene("white", (scenes.Shape("blue", shape, "large", "center"),)))
        masks.append((image != image[0, 0]).any(axis=2))
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            assert (masks[i] != masks[j]).sum() > 40, (scenes.SHAPES[i], scenes.SHAPES[j])


def test_captions_carry_the_attributes():
    for scene, text in scenes.dataset(300, seed=1):
        for obj in scene.objects:
            assert f"{obj.colour} {obj.shape}" in text
    for scene, _ in scenes.dataset(100, seed=2):
        full = scenes.caption(scene)  # canonical: everything named
        for obj in scene.objects:
            assert obj.colour in full and obj.shape in full
            assert scenes.SIZE_WORDS[obj.size][0] in full
            assert scenes.POSITION_PHRASES[obj.position][0] in full
        assert scene.background in full


def test_caption_wording_varies_and_sometimes_leaves_things_out():
    scene = scenes.Scene("gray", (scenes.Shape("pink", "heart", "small", "top right"),))
    rng = random.Random(0)
    texts = {scenes.caption(scene, rng) for _ in range(200)}
    assert len(texts) > 20
    assert any("background" not in t and "on gray" not in t and "on grey" not in t for t in texts)
    assert any("grey" in t for t in texts)


def test_held_out_pairs_never_appear_in_training():
    data = scenes.dataset(3000, seed=0)
    seen = {(o.colour, o.shape) for s, _ in data for o in s.objects}
    assert not seen & scenes.HELD_OUT
    for _, text in data:
        for colour, shape in scenes.HELD_OUT:
            assert f"{colour} {shape}" not in text
    # ... yet every colour and every shape is seen, so the held-out pairs are compositions.
    assert {c for c, _ in seen} == set(scenes.COLOURS) and {s for _, s in seen} == set(scenes.SHAPES)


def test_held_out_split_uses_held_out_pairs_for_its_first_object():
    for scene, _ in scenes.dataset(50, seed=0, split="heldout"):
        assert (scene.objects[0].colour, scene.objects[0].shape) in scenes.HELD_OUT


def test_two_objects_do_not_share_a_position():
    two = [s for s, _ in scenes.dataset(400, seed=5) if len(s.objects) == 2]
    assert len(two) > 50
    assert all(s.objects[0].position != s.objects[1].position for s in two)


def test_attributes_are_plain_data():
    scene = scenes.Scene("black", (scenes.Shape("green", "circle", "small", "left"),))
    assert scene.attributes() == {"background": "black", "objects": [
        {"colour": "green", "shape": "circle", "size": "small", "position": "left"}]}


def test_vocabulary_is_every_word_captions_use():
    """The model card's vocabulary (what the page checks prompts against) is exactly the words of
    the training captions: none missing, none extra."""
    used = set()
    for split in ("train", "heldout"):
        for scene, text in scenes.dataset(4000, seed=1, split=split):
            used.update(scenes.words(text))
            used.update(scenes.words(scenes.caption(scene)))
    assert used == set(scenes.vocabulary())
    assert scenes.words("A cute Puppy, grey-ish!") == ["a", "cute", "puppy", "grey", "ish"]
