// The model card by the model picker, and the note by the prompt when the prompt uses words the
// model never read. A small model knows only its training captions' words; the card (from the
// manifest's `description` and `model_card`) says so before anyone wonders why "a cute puppy"
// gives a grey square.

import { heldOutPairsIn, pairLabel } from "./held_out.js";

/** A text's words as the model card counts them: lower-case runs of letters or digits, any script
 * (the same rule as export/shapes/scenes.py's `words`). */
export function promptWords(text) {
  return String(text).toLowerCase().match(/[\p{L}\p{N}]+/gu) || [];
}

/**
 * What to say about a prompt before it runs: {unknown: [words], heldOut: ["red star", …]}, computed
 * from the manifest's vocabulary and held-out pairs; null when the manifest lists no vocabulary
 * (a full Stable Diffusion model, which read billions of captions).
 */
export function vocabularyCheck(prompt, manifest) {
  const card = manifest?.model_card;
  if (!card?.vocabulary?.length) return null;
  const known = new Set(card.vocabulary);
  const words = promptWords(prompt);
  const unknown = [...new Set(words.filter((w) => !known.has(w)))];
  const heldOut = heldOutPairsIn(prompt, { ...manifest, held_out_pairs: card.held_out || [] })
    .map((pair) => pairLabel(pair, manifest));
  return { unknown, heldOut };
}

const quote = (words) => words.map((w) => `“${w}”`).join(", ");

/** The note shown under the prompt (empty when there is nothing to say). */
export function vocabularyNote(prompt, manifest) {
  const check = vocabularyCheck(prompt, manifest);
  if (!check) return { text: "", kind: "" };
  const parts = [];
  if (check.unknown.length) {
    const count = manifest.model_card.vocabulary.length;
    const these = check.unknown.length === 1 ? "this word" : "these words";
    parts.push(`This model only knows the ${count} words of its training captions (see “What this model knows”); ` +
      `${quote(check.unknown)} ${check.unknown.length === 1 ? "is" : "are"} not among them, so expect ${these} ` +
      "to be ignored or to blur the picture.");
  }
  if (check.heldOut.length) {
    parts.push(`${quote(check.heldOut)} never appeared together in this model's training: each word is known, ` +
      "but not this pair. Whatever it draws, it composed from the separate words.");
  }
  return { text: parts.join(" "), kind: check.unknown.length ? "warning" : parts.length ? "info" : "" };
}

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

// What a Hub manifest may take from sdlens' table of known repos (py/sdlens/hub/known.py).
const TABLE_NUMBERS = {
  vae_scaling_factor: "the VAE scaling factor", scheduler_config: "the noise schedule (scheduler settings)",
  tokenizer_max_length: "the prompt length", defaults: "the default steps, guidance and scheduler",
  sample_size: "the picture size", latent_channels: "the latent channels", text_hidden_size: "the text embedding size",
};

/** Which of a Hub model's numbers its files do not carry, and so came from sdlens' table. */
function tableNote(hub) {
  const named = hub.from_table.map((key) => TABLE_NUMBERS[key] || key.replaceAll("_", " "));
  const tokenizer = hub.tokenizer_from ? `; its tokenizer is ${hub.tokenizer_from}'s` : "";
  return `Not in this repo's files, so taken from sdlens' table of known repos: ${named.join(", ")}${tokenizer}. ` +
    "Everything else (graph inputs and outputs, sizes) was read from the model itself.";
}

/** Fill `container` with the card of `manifest`. */
export function renderModelCard(container, manifest) {
  container.replaceChildren();
  const card = manifest.model_card;
  const description = manifest.description ||
    `${manifest.name}: a ${manifest.pipeline || "Stable Diffusion"} model from ${manifest.source || "an unnamed source"}. ` +
      "Its manifest says nothing about its training data, so this page cannot tell which words it knows.";
  container.append(element("p", "card-description", description));
  if (manifest.hub?.from_table?.length) container.append(element("p", "card-table", tableNote(manifest.hub)));
  if (!card) return;
  if (card.held_out?.length) {
    const line = element("p", "card-held-out");
    line.append(element("b", "", "Never shown in training: "), card.held_out.map((pair) => pairLabel(pair, manifest)).join(", "), ".");
    container.append(line);
  }
  const details = element("details", "card-details");
  details.append(element("summary", "", "What this model knows"));
  if (card.trained_on) details.append(element("p", "", `Trained on: ${card.trained_on}`));
  if (card.limits) details.append(element("p", "", card.limits));
  if (card.vocabulary?.length) {
    const words = element("p", "card-vocabulary");
    words.append(element("b", "", `Its ${card.vocabulary.length} words: `), card.vocabulary.join(" · "));
    details.append(words);
  }
  if (card.held_out_why) details.append(element("p", "", `Why hold pairs out? ${card.held_out_why}`));
  container.append(details);
}

/** The card and the prompt's note, following the loaded model (`show`) and the prompt as typed. */
export function mountModelCard({ card, prompt, note }) {
  let manifest = null;
  const check = () => {
    const { text, kind } = manifest ? vocabularyNote(prompt.value, manifest) : { text: "", kind: "" };
    note.textContent = text;
    note.className = `vocabulary-note ${kind}`;
    note.hidden = !text;
  };
  prompt.addEventListener("input", check);
  return {
    show(next) {
      manifest = next;
      renderModelCard(card, next);
      card.hidden = false;
      check();
    },
    check,
  };
}

/** The line beside the result when its run was made from words the model never read: the grey or
 * meaningless picture is what such a prompt gives, not a fault ("" when there is nothing to say). */
export function resultNote(prompt, manifest) {
  const check = vocabularyCheck(prompt, manifest);
  if (!check?.unknown.length) return "";
  const these = check.unknown.length === 1 ? "a word" : "words";
  return `Why this picture may look grey or meaningless: the prompt has ${these} this model never learned ` +
    `(${quote(check.unknown)}), and a model cannot draw what it never saw.`;
}

/** A note under the big image that follows the current run (the store's "main"): set when a run
 * made with unknown words is shown, cleared when the next run begins. */
export function mountResultNote(store, image) {
  const note = element("p", "vocabulary-note warning result-note");
  note.id = "result-vocabulary";
  note.setAttribute("role", "status");
  note.hidden = true;
  image.after(note);
  const show = ({ detail }) => {
    if (detail.key !== "main") return;
    const run = store.main;
    note.textContent = run?.final ? resultNote(run.settings.prompt, run.manifest) : "";
    note.hidden = !note.textContent;
  };
  store.addEventListener("run", show);
  store.addEventListener("finish", show);
}
