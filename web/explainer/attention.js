// Where each word acts: the UNet's cross-attention maps, per token, at every step.
//
// A learner picks a word (the mean of its tokens) or a single token and sees its map at the
// selected step over x̂₀, and averaged over all steps over the final image. Every word of a run is
// drawn on one colour scale (attention_maps.js, runScale), so a weak word looks weak; ⟨start⟩ and
// ⟨end⟩ are explained apart, on their own scales. `displayed.attention[where]` records exactly the
// numbers drawn and the two ends of the scale they were drawn on, for the tests.

import { displayed } from "./displayed.js";
import { drawRgba, figure } from "./colormaps.js";
import { drawMap, fmt, overlay, shareLegend } from "./attention_draw.js";
import { EVEN_SPREAD, attentionBudget, concentration, defaultWord, isSpecial, mapOf, promptWords, runScale,
         stretchScale, summedMap } from "./attention_maps.js";

const choiceEvents = new EventTarget();
let choice = null; // {key, label, positions}: shared by every attention view on the page
let stretched = false; // the per-word "stretch" option, shared likewise

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

/** The per-word "stretch" option: off by default, because it draws a weak word as bright as a strong one. */
function stretchToggle(onChange) {
  const label = document.createElement("label");
  label.className = "attention-stretch";
  const box = document.createElement("input");
  box.type = "checkbox";
  box.checked = stretched;
  box.addEventListener("change", () => onChange(box.checked));
  label.append(box, " Stretch: draw this word on its own range (exaggerates a weak word; compare shapes, not strengths)");
  return label;
}

/** What one picture's numbers say, in words: its range, how concentrated it is, and whether it is
 * spread evenly or below an even share everywhere. */
function mapNote(map, what, even, special) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of map) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  const peak = concentration(map);
  const note = document.createElement("p");
  note.className = "note attention-scale";
  let text = `${what}: from ${fmt(lo)} to ${fmt(hi)} of each position's attention (an even spread over all ` +
    `tokens would give ${fmt(even)}); its brightest spot gets ${peak.toFixed(2)}× its average.`;
  const uniform = peak < EVEN_SPREAD;
  if (uniform) text += special ? " Spread evenly over the picture." : " Spread evenly: this word points nowhere in particular.";
  if (!special && hi < even) text += " It gets less than an even share everywhere: it pulls little.";
  note.textContent = text;
  note.dataset.uniform = String(uniform);
  return note;
}

/** ⟨start⟩ and ⟨end⟩ are no words; what they are, and why they are drawn on their own scale. */
function specialNote(picked, tokens, budget) {
  const note = document.createElement("p");
  note.className = "note attention-special";
  const padding = tokens.tokens[tokens.length]?.replace("</w>", "");
  note.textContent = picked.positions[0] === 0
    ? `⟨start⟩ is the same token before every prompt (CLIP reads left to right, so here it has read nothing yet). ` +
      `Attention put on it is attention a position gives to no word: ${fmt(budget.start)} of each position's ` +
      `attention on average over this run. It is drawn on its own scale, not the words'.`
    : `⟨end⟩ closes the prompt; CLIP reads left to right, so it has read every word and carries the prompt as a whole. ` +
      `It gets ${fmt(budget.end)} of each position's attention on average, and the ${budget.paddingTokens} padding ` +
      `tokens after it${padding ? ` (“${padding}”)` : ""} ${fmt(budget.padding)} together. ` +
      `It is drawn on its own scale, not the words'.`;
  return note;
}

function budgetNote(budget) {
  const note = document.createElement("p");
  note.className = "note attention-budget";
  note.textContent = `Where a position's attention goes, on average over this run: the prompt's words ${fmt(budget.words)}, ` +
    `⟨start⟩ ${fmt(budget.start)}, ⟨end⟩ ${fmt(budget.end)}, the ${budget.paddingTokens} padding tokens after it ` +
    `${fmt(budget.padding)}.`;
  return note;
}


/**
 * One attention view of the main run. `where` is "refiner" (the selected step over x̂₀ and the
 * average over steps) or "final" (the average over steps over the final image). `decode(run, step)`
 * gives x̂₀.
 */
export function attentionView(run, store, where, decode) {
  const root = document.createElement("div");
  root.className = `attention attention-${where}`;
  const render = () => {
    if (!root.isConnected && root.childElementCount) {
      choiceEvents.removeEventListener("choice", render);
      return;
    }
    const changed = () => choiceEvents.dispatchEvent(new Event("choice"));
    root.replaceChildren(...content(run, store, where, decode, (picked) => {
      choice = picked;
      changed();
    }, (on) => {
      stretched = on;
      changed();
    }));
  };
  choiceEvents.addEventListener("choice", render);
  render();
  return root;
}

function content(run, store, where, decode, pick, stretch) {
  const heading = document.createElement("h4");
  heading.textContent = "Where each word acts: cross-attention maps";
  if (!run.hasAttention) {
    const note = document.createElement("p");
    note.className = "note";
    const hub = run.manifest?.hub;
    // A Hub repo's UNet is as published: it returns the noise prediction only (the maps are an
    // output sdlens' own exports add), and its files are checked against the Hub's listing as they are.
    note.textContent = hub
      ? `This model is ${hub.repo} as published on the Hugging Face Hub: its UNet returns the noise prediction ` +
        "only, without the per-word attention maps that sdlens' own exports add, so there are no maps to show. " +
        "Every other view works. An export made with “python -m export convert” from the same weights has them."
      : "This model has no attention output, so there are no maps to show. Add it with " +
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
  const [tokenCount, h, w] = shape;
  const n = run.steps.length;
  const even = 1 / tokenCount;
  const words = promptWords(run.tokens);
  if (!stillNames(choice, words, run.tokens)) choice = defaultWord(run, words);
  const special = isSpecial(choice.positions, run.tokens);
  // One scale for every word of the run, at every step and for the average over steps; ⟨start⟩ and
  // ⟨end⟩ on their own; "stretch" only where the learner asked for it.
  const scaleKind = special ? "own" : stretched ? "stretch" : "run";
  const scale = scaleKind === "run" ? runScale(run) : scaleKind === "own" ? runScale(run, choice.positions)
    : stretchScale(run, choice.positions);
  const budget = attentionBudget(run);
  const intro = document.createElement("p");
  intro.className = "note";
  intro.textContent = where === "final"
    ? "Each step, every image position shares out one unit of attention over the prompt's tokens. " +
      "Coloured: where the chosen word pulled, averaged over all steps; plain grey: little attention. " +
      "Every word of this run is drawn on the same scale."
    : `Each of the ${h}×${w} latent positions shares out one unit of attention over the ${tokenCount} tokens: the map ` +
      `is the chosen word's share (your prompt's pass, averaged over heads and layers), on one scale for the whole run.`;
  const row = document.createElement("div");
  row.className = "row-pics";
  const step = store.step();
  const record = { available: true, key: choice.key, label: choice.label, positions: choice.positions.slice(), h, w,
                   scale: { ...scale }, scaleKind, steps: n };
  const notes = [];
  if (where === "refiner") {
    const map = mapOf(step.tensors.attention, shape, choice.positions);
    const raw = figure(`step ${step.index + 1}: the map itself, ${h}×${w} latent cells`, "attention-raw");
    drawMap(raw.canvas, map, w, h, scale);
    const over = figure(`over x̂₀ at step ${step.index + 1} (in grey)`, "attention-over");
    decode(run, step).then((image) => {
      drawRgba(over.canvas, overlay(image, map, h, w, scale));
      over.fig.dataset.drawn = "true"; // x̂₀ comes later than the rest: the tests wait on this, not on time
    });
    row.append(raw.fig, over.fig);
    Object.assign(record, { step: step.index, map: Array.from(map) });
    notes.push(mapNote(map, `Step ${step.index + 1}`, even, special));
  }
  // The average over steps is in the same units as one step's map, so it shares the scale.
  const sum = summedMap(run, choice.positions);
  const mean = sum.map((v) => v / n);
  const total = figure(`averaged over all ${n} steps, over the final image (in grey)`, "attention-sum");
  drawRgba(total.canvas, overlay(run.final, mean, h, w, scale));
  row.append(total.fig);
  record.sum = Array.from(sum);
  record.uniform = concentration(mean) < EVEN_SPREAD;
  notes.push(mapNote(mean, `Averaged over all ${n} steps`, even, special));
  displayed.attention = { ...displayed.attention, [where]: record };
  const what = scaleKind === "run" ? "Scale for every word of this run:" : scaleKind === "own"
    ? `Scale of ${choice.label} alone (not the words' scale):` : `Stretched to “${choice.label}” alone:`;
  const legend = shareLegend(scale, even, what, { raw: where === "refiner" });
  legend.dataset.scaleKind = scaleKind;
  const picked = document.createElement("p");
  picked.className = "attention-choice";
  picked.textContent = `“${choice.label}”` + (choice.positions.length > 1 ? ` (mean of tokens ${choice.positions.join(", ")})` : ` (token ${choice.positions[0]})`);
  const about = special ? [specialNote(choice, run.tokens, budget)] : [];
  // In the Refiner's short view, the step's own note stays in sight (it says when a map is near
  // uniform) and the rest of the numbers are one click away, so the opened part fits two screens.
  const [first, ...rest] = notes;
  const more = where === "refiner" ? [first, foldedNotes([...rest, budgetNote(budget)])] : [...notes, budgetNote(budget)];
  return [heading, intro, chips(words, run.tokens, pick), picked, row, legend, ...about, ...more,
          ...(special ? [] : [stretchToggle(stretch)])];
}

/** Notes behind a one-line "the numbers" summary. */
function foldedNotes(notes) {
  const fold = document.createElement("details");
  fold.className = "attention-numbers";
  const summary = document.createElement("summary");
  summary.textContent = "More numbers: the average over all steps, and where attention goes";
  fold.append(summary, ...notes);
  return fold;
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
