"""The objects world as the trainer (export/shapes/train.py) sees it: its scenes, model configs,
and what the app shows next to the model (description, model card with licences, starters)."""

from __future__ import annotations

from ..shapes.scenes import POSITION_PHRASES
from ..shapes.world import World
from . import icons, scenes
from .model import CONFIGS, FULL


def model_card(scene_count: int) -> dict:
    held_out = sorted([name, position] for name, position in scenes.HELD_OUT)
    return {
        "trained_on": (f"{scene_count:,} computer-drawn {scenes.IMAGE_SIZE}×{scenes.IMAGE_SIZE} pictures of one or two "
                       f"emoji objects on a plain background, each with a caption that names what is drawn. "
                       f"Objects: {', '.join(scenes.OBJECTS)}. Each object is drawn by {len(scenes.STYLES)} emoji "
                       f"sets. Backgrounds: {', '.join(scenes.BACKGROUNDS)}. Sizes: small or big. Nine positions."),
        "limits": ("It knows only these objects, as emoji: no photos, people, textures or colours named in "
                   "words. Words outside its vocabulary still become tokens, but the model never learnt what "
                   "they mean."),
        "vocabulary": scenes.vocabulary(),
        "held_out": held_out,
        "held_out_why": ("No training picture showed these objects in these places, although each object appeared "
                         "elsewhere and other objects appeared there. Drawing one anyway means combining the "
                         "object's word with the place's."),
        "licences": [icons.SET_CREDITS[s] for s in scenes.STYLES],
        "licences_why": ("OpenMoji also draws these objects but is CC-BY-SA-4.0 (share-alike); it was left out so "
                         "that the weights need not carry a share-alike licence."),
    }


def extras(scene_count: int = FULL.scenes) -> dict:
    return {
        "model_card": model_card(scene_count),
        "description": ("A small Stable Diffusion (real SD architecture: CLIP text encoder, UNet, VAE) trained from "
                        "scratch on the CPU on emoji pictures of everyday objects (cat, dog, house, tree, apple, "
                        "car, ...), each drawn by several emoji sets; nine positions, two sizes, five backgrounds. "
                        "Some object+place pairs (e.g. a cat in the top left corner) were never shown in training."),
        "starter_prompts": [
            "a big cat in the center, white background",
            "a house on the left, light blue background",
            "an apple at the top right, beige background",
            "a tree on the left and a house on the right, light green background",
            "a small rocket at the bottom, gray background",
            "a cat in the top left corner, white background",
        ],
        "prompt_pairs": [
            ["a big cat in the center, white background", "a big dog in the center, white background"],
            ["a house on the left, light blue background", "a house on the right, light blue background"],
            ["a small apple in the center, beige background", "a big apple in the center, beige background"],
            ["a tree in the center, white background", "a tree in the center, light green background"],
            ["a cat on the left and a fish on the right, white background",
             "a fish on the left and a cat on the right, white background"],
            ["a sun at the top, light blue background", "a moon at the top, light blue background"],
        ],
        "held_out_pairs": sorted([name, position] for name, position in scenes.HELD_OUT),
        # How the page reads and says these pairs (web/held_out.js): an object and one of the nine places,
        # each place said as the captions' first phrase for it ("in the top left corner").
        "held_out_kind": "object+place",
        "place_phrases": {position: phrases[0] for position, phrases in POSITION_PHRASES.items()},
        "text_encoder_training": ("its text encoder has CLIP's design and CLIP's 49,408-token vocabulary, but it "
                                  "learned from scratch together with the UNet, from the denoising task alone, so its "
                                  "numbers mean whatever helped the UNet draw the training objects."),
        "defaults": {"steps": 25, "guidance": 7.5, "scheduler": "ddim"},
    }


OBJECTS = World("objects", scenes, extras, CONFIGS, bf16_autocast=True)
