// Where each word acts: the UNet's cross-attention maps, per token, at every step.
//
// In every cross-attention layer each latent position spreads one unit of attention over the
// prompt's 77 token vectors (a softmax). The UNet graph returns, per step, that share for every
// token, averaged over heads and layers and resized to the latent (tokens × h × w; see
// export/attention.py). Here a learner picks a word (the mean of its tokens) or a single token
// and sees its map at the selected step over x̂₀, and summed over all steps over the final image.
// `displayed.attention` records exactly the numbers drawn, for the tests.

import { displayed } from "./displayed.js";
import { drawRgba, drawValues, figure } from "./colormaps.js";

const d3 = globalThis.d3;
const choiceEvents = new EventTarget();
let choice = null; // {key, label, positions}: shared by every attention view on the page
const fmt = (x) => (x >= 0.01 ? x.toFixed(3) : x.toPrecision(2));
const QUIET_WORDS = new Set(["a", "an", "the", "on", "of", "in", "at", "with", "and", ",", "."]);

/** The prompt's words with their token positions (CLIP ends a word's last token with </w>),
 * framed by the start and end tokens, which soak up much of the attention. */
export function promptWords(tokens) {
  const words = [{ key: "t0", label: "⟨start⟩", positions: [0], special: true }];
  let current = [];
  for (let i = 1; i < tokens.length - 1; i++) {
    current.push(i);
    if (tokens.tokens[i].endsWith("</w>") || i === tokens.length - 2) {
      const label = current.map((j) => tokens.tokens[j].replace("</w>", "")).join("");
      words.push({ key: `w${current[0]}`, label, positions: current, pieces: current.length > 1 });
      current = [];
    }
  }
  words.push({ key: `t${tokens.length - 1}`, label: "⟨end⟩", positions: [tokens.length - 1], special: true });
  return words;
}

/** Mean over `positions` of one step's (tokens, h, w) maps: an h·w Float32Array. */
export function mapOf(maps, shape, positions) {
  const [, h, w] = shape;
  const out = new Float32Array(h * w);
  for (const t of positions) for (let p = 0; p < h * w; p++) out[p] += maps[t * h * w + p];
  for (let p = 0; p < h * w; p++) out[p] /= positions.length;
  return out;
}

/** The same map summed over every step of the run. */
function summedMap(run, positions) {
  const shape = run.steps[0].attention_shape;
  const out = new Float32Array(shape[1] * shape[2]);
  for (const step of run.steps) mapOf(step.tensors.attention, shape, positions).forEach((v, p) => (out[p] += v));
  return out;
}

// Bilinear (half-pixel) resampling of an h×w map to the picture's size, only for drawing it over
// the picture; the numbers recorded and the raw map beside it are the run's own.
function resample(map, h, w, H, W) {
  const out = new Float32Array(H * W);
  const at = (y, x) => map[y * w + x];
  for (let y = 0; y < H; y++) {
    const sy = Math.min(Math.max((y + 0.5) * (h / H) - 0.5, 0), h - 1);
    const y0 = Math.floor(sy);
    const y1 = Math.min(y0 + 1, h - 1);
    const fy = sy - y0;
    for (let x = 0; x < W; x++) {
      const sx = Math.min(Math.max((x + 0.5) * (w / W) - 0.5, 0), w - 1);
      const x0 = Math.floor(sx);
      const x1 = Math.min(x0 + 1, w - 1);
      const fx = sx - x0;
      out[y * W + x] = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) + fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
    }
  }
  return out;
}

/** The picture in grey, with the map laid over it in a warm colour, stretched between the map's
 * lowest and highest value (a word's share differs by a few tenths across the picture). */
function overlay(image, map, h, w) {
  const { width: W, height: H, rgba } = image;
  const up = resample(map, h, w, H, W);
  const [lo, hi] = d3.extent(map);
  const out = new Uint8ClampedArray(W * H * 4);
  for (let p = 0; p < W * H; p++) {
    const grey = 0.6 * (0.3 * rgba[p * 4] + 0.59 * rgba[p * 4 + 1] + 0.11 * rgba[p * 4 + 2]);
    const t = Math.max(0, Math.min(1, (up[p] - lo) / (hi - lo || 1)));
    const heat = d3.rgb(d3.interpolateInferno(0.15 + 0.85 * t));
    const a = 0.8 * t;
    out[p * 4] = (1 - a) * grey + a * heat.r;
    out[p * 4 + 1] = (1 - a) * grey + a * heat.g;
    out[p * 4 + 2] = (1 - a) * grey + a * heat.b;
    out[p * 4 + 3] = 255;
  }
  return { width: W, height: H, rgba: out };
}

/** What the colours mean: the map's own range, in shares of attention. */
function scaleNote(map, what, even, tokens) {
  const [lo, hi] = d3.extent(map);
  const note = document.createElement("p");
  note.className = "note attention-scale";
  note.textContent = `${what}: dark = ${fmt(lo)}, bright = ${fmt(hi)} of each position's attention` +
    ` (an even spread over the ${tokens} tokens would give ${fmt(even)}).`;
  return note;
}

/** Whether a choice kept from an earlier run names the same word (or token) in this run's prompt:
 * a new prompt may put another word at those positions, and its map must not carry the old label. */
function stillNames(picked, words, tokens) {
  if (!picked) return false;
  const same = (positions) => positions.length === picked.positions.length && positions.every((t, i) => t === picked.positions[i]);
  if (words.some((w) => w.key === picked.key && w.label === picked.label && same(w.positions))) return true;
  const [t] = picked.positions;
  return picked.key === `t${t}` && picked.positions.length === 1 && t < tokens.length &&
    tokens.tokens[t].replace("</w>", "") === picked.label;
}

function defaultChoice(words) {
  return words.find((w) => !w.special && !QUIET_WORDS.has(w.label.toLowerCase())) || words[1] || words[0];
}

function chips(words, tokens, onPick) {
  const list = document.createElement("div");
  list.className = "attention-chips";
  list.setAttribute("role", "group");
  list.setAttribute("aria-label", "choose a word or token");
  const add = (key, label, positions, className, title) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = `chip ${className}`;
    button.textContent = label;
    button.title = title;
    button.dataset.key = key;
    button.setAttribute("aria-pressed", String(choice?.key === key));
    button.addEventListener("click", () => onPick({ key, label, positions }));
    list.append(button);
  };
  for (const word of words) {
    const where = word.positions.length > 1 ? `tokens ${word.positions.join(", ")}` : `token ${word.positions[0]}`;
    add(word.key, word.label, word.positions, word.special ? "special" : "word",
      word.pieces ? `${where}: the mean of its ${word.positions.length} tokens` : where);
    if (word.pieces) {
      for (const t of word.positions) {
        add(`t${t}`, tokens.tokens[t].replace("</w>", ""), [t], "piece", `token ${t} alone`);
      }
    }
  }
  return list;
}


/**
 * One attention view of the main run. `where` is "refiner" (the selected step over x̂₀ and the sum
 * over steps) or "final" (the sum over steps over the final image). `decode(run, step)` gives x̂₀.
 */
export function attentionView(run, store, where, decode) {
  const root = document.createElement("div");
  root.className = `attention attention-${where}`;
  const render = () => {
    if (!root.isConnected && root.childElementCount) {
      choiceEvents.removeEventListener("choice", render);
      return;
    }
    root.replaceChildren(...content(run, store, where, decode, (picked) => {
      choice = picked;
      choiceEvents.dispatchEvent(new Event("choice"));
    }));
  };
  choiceEvents.addEventListener("choice", render);
  render();
  return root;
}

function content(run, store, where, decode, pick) {
  const heading = document.createElement("h4");
  heading.textContent = "Where each word acts: cross-attention maps";
  if (!run.hasAttention) {
    const note = document.createElement("p");
    note.className = "note";
    note.textContent = "This model has no attention output, so there are no maps to show. Add it with " +
      "“python -m export attention MODEL_FOLDER” (the weights and pictures stay the same).";
    displayed.attention = { ...displayed.attention, [where]: { available: false } };
    return [heading, note];
  }
  if (!run.explained || !run.steps[0]?.attention_shape) {
    // The current run was made with "Explain every step" off: its steps' maps were not kept.
    const note = document.createElement("p");
    note.className = "note";
    note.textContent = "This run was made with “Explain every step” off, so its attention maps were not kept. " +
      "Turn it on and generate again to see where each word acts.";
    displayed.attention = { ...displayed.attention, [where]: { available: false, explained: false } };
    return [heading, note];
  }
  const shape = run.steps[0].attention_shape;
  const [, h, w] = shape;
  const words = promptWords(run.tokens);
  if (!stillNames(choice, words, run.tokens)) choice = defaultChoice(words);
  const intro = document.createElement("p");
  intro.className = "note";
  intro.textContent = where === "final"
    ? "Each step, every image position shares out its attention over the prompt's tokens. " +
      "Bright: where the chosen word pulled most, summed over all steps."
    : `In each cross-attention layer, every one of the ${h}×${w} latent positions spreads one unit of attention ` +
      `over the ${shape[0]} token vectors. The map shows the share the chosen word got (for the pass with your ` +
      `prompt; averaged over heads and layers).`;
  const row = document.createElement("div");
  row.className = "row-pics";
  const step = store.step();
  const record = { available: true, key: choice.key, label: choice.label, positions: choice.positions.slice(), h, w };
  if (where === "refiner") {
    const map = mapOf(step.tensors.attention, shape, choice.positions);
    const raw = figure(`step ${step.index + 1}: the map itself, ${h}×${w} latent cells`, "attention-raw");
    drawValues(raw.canvas, map, w, h, { signed: false });
    const over = figure(`over x̂₀ at step ${step.index + 1}`, "attention-over");
    decode(run, step).then((image) => drawRgba(over.canvas, overlay(image, map, h, w)));
    row.append(raw.fig, over.fig);
    Object.assign(record, { step: step.index, map: Array.from(map) });
  }
  const sum = summedMap(run, choice.positions);
  const total = figure(`summed over all ${run.steps.length} steps, over the final image`, "attention-sum");
  drawRgba(total.canvas, overlay(run.final, sum, h, w));
  row.append(total.fig);
  record.sum = Array.from(sum);
  const notes = [];
  if (where === "refiner") notes.push(scaleNote(record.map, `Step ${step.index + 1}`, 1 / shape[0], shape[0]));
  notes.push(scaleNote(sum, `All ${run.steps.length} steps summed`, run.steps.length / shape[0], shape[0]));
  displayed.attention = { ...displayed.attention, [where]: record };
  const picked = document.createElement("p");
  picked.className = "attention-choice";
  picked.textContent = `“${choice.label}”` + (choice.positions.length > 1 ? ` (mean of tokens ${choice.positions.join(", ")})` : ` (token ${choice.positions[0]})`);
  return [heading, intro, chips(words, run.tokens, pick), picked, row, ...notes];
}

/** What an explained run exposes (`window.sdlens.explain(…).attention`): the maps of every step,
 * each a Float32Array of tokens × h × w, or available false when the model has none. */
export function attentionOf(run) {
  if (!run.hasAttention || !run.explained) return { available: false };
  const [tokens, h, w] = run.steps[0].attention_shape;
  return { available: true, shape: [run.steps.length, tokens, h, w], tokens: run.tokens.tokens.slice(),
           maps: run.steps.map((s) => s.tensors.attention) };
}

/** Beside the final image: the view that sums over steps, once an explained run has finished. */
export function mountAttention(container, store) {
  const decode = (run, step) => {
    if (!run.decoded.has(step.index)) run.decoded.set(step.index, window.sdlens.decode(step.tensors.x0, step.shape));
    return run.decoded.get(step.index);
  };
  const render = () => {
    const run = store.main;
    container.replaceChildren();
    if (run && run.final) container.append(attentionView(run, store, "final", decode));
  };
  store.addEventListener("finish", ({ detail }) => detail.key === "main" && render());
  store.addEventListener("run", ({ detail }) => detail.key === "main" && container.replaceChildren());
  render();
}
