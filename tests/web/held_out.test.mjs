// Which prompts ask for a pair a model never saw (web/held_out.js), for both worlds' kinds, and the
// note by the prompt that model_card.js builds from it. Run by tests/test_backend_rules.py:
// node --test tests/web/
import assert from "node:assert/strict";
import { test } from "node:test";

import { heldOutPairsIn, pairLabel, pairNamed, placeOf } from "../../web/held_out.js";
import { vocabularyCheck } from "../../web/model_card.js";

const shapes = { held_out_pairs: [["blue", "heart"], ["red", "star"]] };
const PLACES = { "top left": "in the top left corner", top: "at the top", right: "on the right", center: "in the center" };
const objects = {
  held_out_kind: "object+place", place_phrases: PLACES,
  held_out_pairs: [["cat", "top left"], ["fish", "top"], ["house", "right"]],
  model_card: { vocabulary: ["a", "big", "cat", "fish", "house", "in", "the", "top", "left", "corner", "at", "on", "right",
    "and", "dog", "white", "background"], held_out: [["cat", "top left"], ["fish", "top"], ["house", "right"]] },
};

test("colour+shape: both words in one object phrase, in any case, plural shapes too", () => {
  assert.deepEqual(heldOutPairsIn("A big RED STAR on the left", shapes), [["red", "star"]]);
  assert.deepEqual(heldOutPairsIn("two red stars", shapes), [["red", "star"]]);
  assert.deepEqual(heldOutPairsIn("a red circle and a star", shapes), []);
  assert.equal(pairNamed(["red", "star"], shapes), "a red star");
  assert.equal(pairLabel(["blue", "heart"], shapes), "blue heart");
});

test("object+place: the phrase's place is exactly the pair's place", () => {
  assert.deepEqual(heldOutPairsIn("a cat in the top left corner, white background", objects), [["cat", "top left"]]);
  assert.deepEqual(heldOutPairsIn("a cat at the top left", objects), [["cat", "top left"]]);
  // A fish at the top left or top right is not a fish at the top; "at the top center" is.
  assert.deepEqual(heldOutPairsIn("a fish at the top left", objects), []);
  assert.deepEqual(heldOutPairsIn("a fish at the top center", objects), [["fish", "top"]]);
  assert.deepEqual(heldOutPairsIn("a house in the top right corner", objects), []);
  // Each object phrase on its own: the cat is on the left, the house on the right.
  assert.deepEqual(heldOutPairsIn("a cat on the left and a house on the right", objects), [["house", "right"]]);
  assert.deepEqual(heldOutPairsIn("a dog in the top left corner", objects), []);
  assert.equal(pairNamed(["cat", "top left"], objects), "a cat in the top left corner");
  assert.equal(pairNamed(["apple", "left"], { ...objects, place_phrases: { left: "on the left" } }), "an apple on the left");
});

test("the nine places", () => {
  const cases = { "top left": ["top", "left"], top: ["at", "top", "center"], center: ["in", "the", "middle"],
    "bottom right": ["bottom", "right"], right: ["right"] };
  for (const [place, words] of Object.entries(cases)) assert.equal(placeOf(words), place);
  assert.equal(placeOf(["a", "cat"]), null);
});

test("the note by the prompt names the held-out pair as a caption would", () => {
  assert.deepEqual(vocabularyCheck("a cat in the top left corner", objects), { unknown: [], heldOut: ["cat in the top left corner"] });
  assert.deepEqual(vocabularyCheck("a cute cat on the right", objects), { unknown: ["cute"], heldOut: [] });
});
