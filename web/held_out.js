// Held-out pairs: combinations that a small model's training pictures never showed, although
// each half of the pair appeared with other partners (the manifest's `held_out_pairs`). The
// worlds in export/ hold out two kinds (the manifest's `held_out_kind`):
//   "colour+shape"  the shapes world:  ["red", "star"]       "a red star"
//   "object+place"  the objects world: ["cat", "top left"]   "a cat in the top left corner"
// The model card's note, the starters' badge, the article and the tour all read pairs here, so
// they agree on which prompt asks for one.

export const pairKind = (manifest) => manifest?.held_out_kind || "colour+shape";

/** The words of each object phrase of a prompt: captions join objects with commas and "and". */
function phrases(prompt) {
  return String(prompt).toLowerCase().split(/,|\band\b/).map((phrase) => phrase.match(/[a-z]+/g) || []);
}

/**
 * The place a phrase names, in the nine names of export/shapes/scenes.py's POSITIONS
 * ("top left", "top", "center", …), or null: "at the top center" is "top", "in the middle" "center".
 */
export function placeOf(words) {
  const vertical = ["top", "bottom"].find((w) => words.includes(w));
  const horizontal = ["left", "right"].find((w) => words.includes(w));
  if (vertical || horizontal) return [vertical, horizontal].filter(Boolean).join(" ");
  return words.includes("center") || words.includes("middle") ? "center" : null;
}

function asks(words, [first, second], kind) {
  if (!words.includes(first) && !words.includes(`${first}s`)) return false;
  return kind === "object+place" ? placeOf(words) === second : words.includes(second) || words.includes(`${second}s`);
}

/** The held-out pairs a prompt asks for: both halves named in the same object phrase. */
export function heldOutPairsIn(prompt, manifest) {
  const pairs = manifest?.held_out_pairs || [];
  const kind = pairKind(manifest);
  const found = [];
  for (const words of phrases(prompt)) {
    for (const pair of pairs) {
      if (asks(words, pair, kind) && !found.includes(pair)) found.push(pair);
    }
  }
  return found;
}

/** A pair as a caption says it, without the article: "red star", "cat in the top left corner". */
export function pairLabel([first, second], manifest) {
  if (pairKind(manifest) !== "object+place") return `${first} ${second}`;
  return `${first} ${manifest?.place_phrases?.[second] || `at the ${second}`}`;
}

const article = (word) => (/^[aeiou]/.test(word) ? "an" : "a");

/** A pair with its article: "a red star", "an apple in the bottom left corner". */
export const pairNamed = (pair, manifest) => `${article(pair[0])} ${pairLabel(pair, manifest)}`;

/** The two halves in words, for sentences about the kind: {first: "colour", second: "shape", world: "shapes"}. */
export function pairParts(manifest) {
  return pairKind(manifest) === "object+place"
    ? { first: "object", second: "place", world: "everyday objects" }
    : { first: "colour", second: "shape", world: "shapes" };
}
