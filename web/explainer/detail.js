// Level 2: one component opened up, at the selected timestep. Every picture and number comes
// from the run in the store; `displayed` records exactly what is on screen, for the tests.

import { attentionView } from "./attention.js";
import { displayed } from "./displayed.js";
import { schedulerName } from "../schedulers.js";
import { decoderOf } from "../decoders.js";
import { upscalerText } from "../stage/final_decoder.js";
import { drawRgba, drawValues, figure, legend, maxAbs } from "./colormaps.js";
import { isOn } from "./settings.js";
import { COMPONENTS, shapes } from "./overview.js";
import { allNumbers, fewRows, tensorPictures, timeValue } from "./detail_short.js";

const d3 = globalThis.d3;

// Level-3 views that open inside a component's panel (guidance_geometry.js, clip_lesson.js):
// each is called with (panel body, run, store) after the panel is drawn.
const extensions = { text: [], refiner: [], upscaler: [] };
export function extendPanel(id, draw) {
  extensions[id].push(draw);
}

function channels(tensor, shape, index = 0) {
  const [, c, h, w] = shape;
  const size = h * w;
  return Array.from({ length: c }, (_, k) => tensor.subarray(index * c * size + k * size, index * c * size + (k + 1) * size));
}

/** A row of one picture per channel, all on one colour scale, with that scale's legend. */
function channelStrip(title, tensor, shape, scale) {
  const [, , h, w] = shape;
  const row = document.createElement("div");
  row.className = "strip";
  const heading = document.createElement("h4");
  heading.textContent = title;
  row.append(heading);
  channels(tensor, shape).forEach((values, k) => {
    const { fig, canvas } = figure(`channel ${k + 1}`);
    drawValues(canvas, values, w, h, { signed: true, scale });
    row.append(fig);
  });
  row.append(legend(true, scale));
  return row;
}

// Whole numbers (timesteps) as integers: "961", not "961.0".
const fmt = (x) => (Number.isInteger(x) ? String(x) : Math.abs(x) >= 100 ? x.toFixed(1) : Math.abs(x) >= 1 ? x.toFixed(3) : x.toPrecision(3));

// -- Text ----------------------------------------------------------------------------------------

/** A token as a student reads it: its text without CLIP's end-of-word mark, the bytes of a
 * character split over several tokens, and the word of the prompt it came from. */
export function tokenView(tokens, i, suffix = "</w>") {
  const raw = tokens.tokens[i];
  const special = raw.startsWith("<|") && raw.endsWith("|>");
  const endsWord = !special && raw.endsWith(suffix);
  let text = endsWord ? raw.slice(0, -suffix.length) : raw;
  // Part of a character (CJK, emoji): the tokenizer shows its raw bytes as \xNN escapes.
  const bytes = /\\x[0-9a-f]{2}/i.test(text);
  if (bytes) text = text.replace(/\\x([0-9a-f]{2})/gi, (_, h) => ` ${h.toUpperCase()}`).trim();
  const w = tokens.word_ids?.[i];
  const word = w === null || w === undefined ? null : tokens.words[w];
  const pieces = word === null ? 0 : tokens.word_ids.filter((x) => x === w).length;
  return { raw, text, special, endsWord, bytes, word: pieces > 1 || bytes ? word : null };
}

function textPanel(panel, run) {
  const tokens = run.tokens;
  const [, n, hidden] = run.textShape;
  const intro = document.createElement("p");
  intro.textContent = `CLIP's tokenizer split your prompt into ${tokens.length - 2} tokens, framed by start and end ` +
    `tokens and padded to ${tokens.max_length}. The text encoder turns each position into ${hidden} numbers.`;
  const key = document.createElement("p");
  key.className = "note";
  key.innerHTML = `A token with a bar at its right edge <span class="tok-sample word-end">red</span> ends a word
    (CLIP writes it “red&lt;/w&gt;”): “red” as a whole word and “red” at the start of “reddish” are different tokens.
    A word CLIP does not know whole is split into pieces, each labelled with its word; a character outside its
    alphabet (Chinese, emoji) becomes bytes, shown in hexadecimal.`;
  const list = document.createElement("ol");
  list.className = "tokens";
  tokens.tokens.forEach((token, i) => {
    const view = tokenView(tokens, i);
    const li = document.createElement("li");
    li.className = i === 0 || i === tokens.length - 1 ? "special" : i >= tokens.length ? "padding" : "word";
    li.title = view.raw;
    li.innerHTML = `<span class="tok"></span><span class="id">${tokens.ids[i]}</span>`;
    const tok = li.querySelector(".tok");
    tok.textContent = view.text;
    if (view.endsWord) tok.classList.add("word-end");
    if (view.bytes) tok.classList.add("bytes");
    if (view.word !== null) {
      const of = document.createElement("span");
      of.className = "of-word";
      of.textContent = `of “${view.word}”`;
      li.append(of);
    }
    if (i >= tokens.length + 2) li.hidden = true; // show the first two paddings; the rest are alike
    list.append(li);
  });
  const more = document.createElement("p");
  more.className = "note";
  more.textContent = `… and ${Math.max(0, tokens.max_length - tokens.length - 2)} more padding tokens (id ${tokens.ids[tokens.max_length - 1]}).`;
  const glance = glanceRow(panel);
  glance.first.append(intro, list, more);
  if (tokens.dropped_words.length) {
    const dropped = document.createElement("p");
    dropped.className = "warning";
    dropped.textContent = tokens.dropped_note; // one line with a count, however long the prompt
    panel.append(dropped);
  }
  displayed.text = { ids: tokens.ids.slice(), tokens: tokens.tokens.slice(), length: tokens.length, norms: null };
  const emb = run.textEmbeddings;
  if (!emb) {
    panel.append(notExplained("the text encoder's output"));
    return;
  }
  // Short: the prompt's own rows of the encoder's output, each labelled with its token.
  glance.second.append(labelledHeatmap(run, emb, Math.min(n, tokens.length + 1)));
  const all = allNumbers("all 77 rows, each token's vector length, how tokens are written");
  panel.append(all.details);
  all.body.append(key);
  // Embedding heatmap: tokens down, dimensions across; and each token's vector length.
  const { fig, canvas } = figure(`text encoder output: ${n} tokens (down) × ${hidden} dimensions (across)`, "heatmap");
  drawValues(canvas, emb, hidden, n, { signed: true, scale: maxAbs(emb) });
  const norms = Array.from({ length: n }, (_, t) => Math.hypot(...emb.subarray(t * hidden, (t + 1) * hidden)));
  const normFig = normsChart(norms, tokens.length);
  const row = document.createElement("div");
  row.className = "row-pics";
  fig.append(legend(true, maxAbs(emb))); // the heatmap's own scale, under it (not by the bar chart)
  row.append(fig, normFig);
  all.body.append(row);
  displayed.text.norms = norms;
}

/** Two columns for what a panel shows at a glance (one column on a narrow screen). */
function glanceRow(panel) {
  const row = document.createElement("div");
  row.className = "glance";
  const first = document.createElement("div");
  const second = document.createElement("div");
  row.append(first, second);
  panel.append(row);
  return { first, second };
}

/** The first `rows` rows of the text encoder's output (the prompt's tokens and one padding), each
 * row labelled with its token, on the whole output's colour scale. */
function labelledHeatmap(run, emb, rows) {
  const [, , hidden] = run.textShape;
  const scale = maxAbs(emb);
  const { fig, canvas, cap } = figure("", "heatmap labelled-heatmap");
  cap.textContent = `text encoder output for your prompt's tokens: one row of ${hidden} numbers per token ` +
    `(the ${run.tokens.max_length - rows} padding rows after these are in “all numbers”)`;
  drawValues(canvas, emb.subarray(0, rows * hidden), hidden, rows, { signed: true, scale });
  const grid = document.createElement("div");
  grid.className = "heat-rows";
  grid.style.setProperty("--rows", rows);
  const labels = document.createElement("ol");
  labels.className = "row-labels";
  for (let i = 0; i < rows; i++) {
    const view = tokenView(run.tokens, i);
    const li = document.createElement("li");
    li.textContent = i === 0 ? "⟨start⟩" : i === run.tokens.length - 1 ? "⟨end⟩" : i >= run.tokens.length ? "⟨pad⟩" : view.text;
    labels.append(li);
  }
  grid.append(labels, canvas);
  fig.prepend(grid);
  fig.append(legend(true, scale));
  return fig;
}

/** What a run made with "Explain every step" off cannot show, and how to get it. */
function notExplained(what) {
  const p = document.createElement("p");
  p.className = "not-explained";
  p.textContent = `This run was made with “Explain every step” off, so it did not keep ${what}. ` +
    "Tick “Explain every step” and press Generate to see it.";
  return p;
}

function normsChart(norms, real) {
  const width = 260;
  const height = 150;
  const svg = d3.create("svg").attr("viewBox", `0 0 ${width} ${height}`).attr("class", "norms");
  const x = d3.scaleLinear().domain([0, norms.length]).range([30, width - 5]);
  const y = d3.scaleLinear().domain([0, d3.max(norms)]).nice().range([height - 20, 8]);
  svg.append("g").selectAll("rect").data(norms).join("rect")
    .attr("x", (_, i) => x(i)).attr("width", Math.max(1, x(1) - x(0) - 0.5))
    .attr("y", (d) => y(d)).attr("height", (d) => y(0) - y(d))
    .attr("fill", (_, i) => (i < real ? "#2f5d9b" : "#aab4c0"));
  svg.append("g").attr("transform", `translate(0,${height - 20})`).call(d3.axisBottom(x).ticks(4));
  svg.append("g").attr("transform", "translate(30,0)").call(d3.axisLeft(y).ticks(4));
  const fig = document.createElement("figure");
  fig.className = "pic";
  const cap = document.createElement("figcaption");
  cap.textContent = "length of each token's vector (blue: your tokens, grey: padding)";
  fig.append(svg.node(), cap);
  return fig;
}

// -- Refiner -------------------------------------------------------------------------------------

function refinerPanel(panel, run, store, decode) {
  const step = store.step();
  if (!run.explained) {
    panel.append(notExplained("each step's noisy latent, noise predictions and update"));
    displayed.refiner = null;
    return;
  }
  const { tensors, shape, coefficients } = step;
  const g = Number(run.settings.guidance);
  const [, c, h, w] = shape;
  const guided = Boolean(tensors.eps_uncond);
  const diff = guided ? tensors.eps_cond.map((v, i) => v - tensors.eps_uncond[i]) : null;
  const scale = maxAbs(tensors.eps_cond, tensors.eps_guided, ...(guided ? [tensors.eps_uncond] : []));

  const head = document.createElement("p");
  const call = step.calls > 1 ? `, UNet call <b>${step.call + 1}</b> of ${step.calls}` : "";
  head.innerHTML = `Step <b>${step.step + 1}</b> of ${run.settings.steps}${call}: timestep t = <b>${Math.round(step.timestep)}</b>,
    noise level σ = <b>${step.sigma.toFixed(3)}</b>. The latent is ${c}×${h}×${w} numbers.`;
  panel.append(head);
  if (step.role) {
    // why this step calls the UNet more than once (Heun; PNDM's warm-up), from the scheduler itself
    const why = document.createElement("p");
    why.className = "call-role";
    why.textContent = `${schedulerName(run.settings.scheduler)}: ${step.role}.`;
    panel.append(why);
  }

  // Short by default: one picture per tensor, the update in one line, the rows a class needs.
  // Every channel and coefficient is one click away, under "all numbers".
  const pictures = tensorPictures(run, step, guided);
  const oneLine = document.createElement("p");
  oneLine.className = "formula update-line";
  oneLine.textContent = (guided ? `ε = ε_uncond + g·(ε_cond − ε_uncond) with g = ${g}, then ` : `ε = ε_cond (guidance g = ${g} is off), then `) +
    schedulerFormula(coefficients);
  const few = fewRows(coefficients, coefficientLabel, fmt);
  const all = allNumbers();
  // At a glance, side by side on a wide screen: the step's pictures and update | where each word acts.
  const glance = glanceRow(panel);
  glance.first.append(pictures, oneLine, few);
  panel.append(all.details);
  const full = all.body;
  // No "x_t as colours" picture: a linear map from latent channels to RGB does not fit this VAE
  // (its pictures turn grey-green while the image is a red disc), so the channels speak for x_t.
  full.append(channelStrip("x_t: the noisy latent going in", tensors.latent, shape, maxAbs(tensors.latent)));

  if (guided) {
    full.append(channelStrip("ε_uncond: noise predicted without your prompt", tensors.eps_uncond, shape, scale));
    full.append(channelStrip("ε_cond: noise predicted with your prompt", tensors.eps_cond, shape, scale));
    full.append(channelStrip("ε_cond − ε_uncond: what your prompt adds", diff, shape, maxAbs(diff)));
  } else {
    full.append(channelStrip("ε: noise predicted with your prompt (guidance off: one pass)", tensors.eps_cond, shape, scale));
  }
  const formula = document.createElement("p");
  formula.className = "formula";
  formula.textContent = guided
    ? `ε = ε_uncond + g·(ε_cond − ε_uncond) with g = ${g}: the prompt's difference is pushed ${g}× as hard.`
    : `Guidance g = ${g} ≤ 1 switches guidance off: ε = ε_cond, and the model runs once per step.`;
  const belowOne = document.createElement("p");
  belowOne.className = "note guidance-below-one";
  belowOne.textContent = guided && g < 1
    ? `You ticked “use the guidance formula below g = 1”: at g = ${g} the prompt's difference is scaled down` +
      (g === 0 ? " to nothing, so ε = ε_uncond and your prompt is ignored." : `, to ${g}× its size.`) +
      " By default (as in diffusers) any g ≤ 1 switches guidance off instead."
    : guided
    ? "Below g = 1 this formula is not used (unless you tick “use the guidance formula below g = 1”): this app, " +
      "like diffusers, switches guidance off at any g ≤ 1 and takes ε_cond alone. So g = 0 does not ignore your prompt, and g = 0 and g = 1 give the same image."
    : `The formula ε_uncond + g·(ε_cond − ε_uncond) would give ε_uncond at g = 0 and ignore the prompt, but at ` +
      "g ≤ 1 this app, like diffusers, skips it and uses your prompt's prediction alone. So g = 0 and g = 1 give " +
      "the same image.";
  full.append(formula, belowOne);
  full.append(channelStrip("ε: the guided noise the scheduler uses", tensors.eps_guided, shape, scale));

  const update = document.createElement("div");
  update.className = "scheduler";
  update.innerHTML = `<h4></h4><p class="formula"></p><table></table>`;
  update.querySelector("h4").textContent = `${schedulerName(run.settings.scheduler, run.settings.karras)} update`;
  update.querySelector(".formula").textContent = schedulerFormula(coefficients);
  const table = update.querySelector("table");
  const headRow = table.createTHead().insertRow();
  for (const text of ["", "value", "what it is"]) headRow.append(Object.assign(document.createElement("th"), { textContent: text }));
  const body = table.createTBody();
  for (const [name, value] of Object.entries(coefficients)) {
    const [symbol, meaning] = coefficientLabel(name);
    const tr = body.insertRow();
    tr.dataset.name = name;
    tr.title = name; // the scheduler's own name for it, for the curious
    tr.insertCell().textContent = symbol;
    tr.insertCell().textContent = name === "order" ? String(value) : timeValue(name, value, fmt);
    tr.insertCell().textContent = meaning;
  }
  full.append(update);

  const x0Row = document.createElement("div");
  x0Row.className = "strip";
  x0Row.innerHTML = "<h4>x̂₀: the model's current guess of the clean image</h4>";
  const by = step.preview.source === "preview_decoder" ? "the preview decoder (TAESD)" : "the VAE";
  const shown = step.preview.source === "linear" ? null : step.preview; // the picture's own size
  const x0 = figure(`decoded by ${by} (${c}×${h}×${w} → 3×${shown ? shown.height : h * run.manifest.vae_scale_factor}×` +
    `${shown ? shown.width : w * run.manifest.vae_scale_factor})`);
  x0Row.append(x0.fig);
  full.append(x0Row);
  decode(run, step).then((image) => drawRgba(x0.canvas, image));
  glance.second.append(attentionView(run, store, "refiner", decode));

  displayed.refiner = {
    index: store.selected, guidance: g, timestep: step.timestep,
    eps_uncond: guided ? Array.from(tensors.eps_uncond) : null,
    eps_cond: Array.from(tensors.eps_cond), eps_guided: Array.from(tensors.eps_guided),
    difference: guided ? Array.from(diff) : null, coefficients: { ...coefficients },
    pictures: pictures.shown, // [{name, by}]: the short view's picture of each tensor, and its decoder
  };
}

/** "1.33·x_t − 0.515·ε": a linear combination with each sign written once, zero terms left out. */
export function linear(terms) {
  const shown = terms.filter(([coef]) => coef !== 0 && Number.isFinite(coef));
  if (!shown.length) return "0";
  return shown.map(([coef, name], i) => {
    const sign = coef < 0 ? (i ? " − " : "−") : i ? " + " : "";
    return Math.abs(coef) === 1 ? `${sign}${name}` : `${sign}${fmt(Math.abs(coef))}·${name}`;
  }).join("");
}

function schedulerFormula(k) {
  const corrected = "corrector_last_sample_coef" in k
    ? `x_t ← ${fmt(k.corrector_last_sample_coef)}·x_previous + ${fmt(k.corrector_x0_prev_coef)}·x̂₀(previous) + ` +
      `${fmt(k.corrector_x0_coef)}·x̂₀ (the corrector)   then   `
    : "";
  if ("start_sample_coef" in k) { // Heun's second call: the step is redone from its start
    return `x_next = ${fmt(k.start_sample_coef)}·x_start + ${fmt(k.start_model_coef)}·ε(call 1) + ` +
      `${fmt(k.sample_coef)}·x_t + ${fmt(k.model_coef)}·ε   (the average of both slopes)`;
  }
  if ("eps_coef_0" in k) { // PNDM: a blend of the last predictions
    const blend = Object.keys(k).filter((n) => n.startsWith("eps_coef_")).map((n, j) => `${fmt(k[n])}·ε${j ? `(−${j})` : ""}`);
    return `ε' = ${blend.join(" + ")}   and   x_next = ${fmt(k.sample_coef)}·x + ${fmt(k.model_coef)}·ε'`;
  }
  if ("c_skip" in k) { // LCM
    const noise = k.noise_coef ? ` + ${fmt(k.noise_coef)}·fresh noise` : "";
    return `x̂₀ = ${fmt(k.x0_sample_coef)}·x_t + ${fmt(k.x0_model_coef)}·ε   and   x_next = ${fmt(k.denoised_coef)}·x̂₀${noise}`;
  }
  if ("sample_coef" in k && "x0_coef" in k) {
    const prev = k.x0_prev_coef ? ` + ${fmt(k.x0_prev_coef)}·x̂₀(previous step)` : "";
    return `${corrected}x_next = ${fmt(k.sample_coef)}·x_t + ${fmt(k.x0_coef)}·x̂₀${prev}`;
  }
  if ("sample_coef" in k && "x0_coef" in k) {
    return `x_next = ${linear([[k.sample_coef, "x_t"], [k.x0_coef, "x̂₀"], [k.x0_prev_coef || 0, "x̂₀(previous step)"],
      [k.x0_prev2_coef || 0, "x̂₀(two steps back)"]])}`;
  }
  if ("sample_coef" in k && "model_coef" in k) {
    return `x_next = ${linear([[k.sample_coef, "x_t"], [k.model_coef, "ε"], [k.noise_coef || 0, "fresh noise"]])}` +
      `   and   x̂₀ = ${linear([[k.x0_sample_coef, "x_t"], [k.x0_model_coef, "ε"]])}`;
  }
  if ("lms_coef_0" in k) {
    const terms = Object.keys(k).filter((n) => n.startsWith("lms_coef_")).map((n, j) => [k[n], `d${j}`]);
    return `x_next = ${linear([[1, "x_t"], ...terms])}   (d0 = this step's slope (x_t − x̂₀)/σ, d1, d2… the slopes of the steps before)`;
  }
  return "x_next from x_t and ε with the numbers below";
}

// The scheduler's numbers in words: name → [symbol, meaning]. Unknown names are shown as they are.
const COEFFICIENTS = {
  timestep: ["t", "this step's timestep (0 = clean, 1000 = pure noise)"],
  prev_timestep: ["t_next", "the timestep this step goes to (below 0: past the last one, to the clean end)"],
  alpha_prod_t: ["ᾱ_t", "share of the clean picture left in x_t (signal)"],
  alpha_prod_t_prev: ["ᾱ_next", "the same share after this step"],
  beta_prod_t: ["1 − ᾱ_t", "share of noise in x_t"],
  sigma: ["σ", "noise level now (noise ÷ signal)"],
  sigma_prev: ["σ_next", "noise level after this step"],
  sigma_next: ["σ_next", "noise level after this step"],
  sigma_up: ["σ_up", "fresh random noise added back (ancestral sampling)"],
  sigma_down: ["σ_down", "noise level stepped down to before that noise is added"],
  noise_coef: ["weight of fresh noise", "how much new random noise goes into x_next"],
  dt: ["Δσ", "step size: the change in noise level"],
  order: ["order", "how many steps' predictions this update combines"],
  x0_sample_coef: ["x̂₀: weight of x_t", "x̂₀ = (this)·x_t + (next row)·ε"],
  x0_model_coef: ["x̂₀: weight of ε", "minus the noise level: remove the predicted noise"],
  eps_sample_coef: ["ε used: weight of x_t", "the noise DDIM steps with = (this)·x_t + (next row)·ε"],
  eps_model_coef: ["ε used: weight of ε", "1: the UNet's prediction as it is"],
  derivative_sample_coef: ["slope: weight of x_t", "slope d = (x_t − x̂₀)/σ = (this)·x_t + (next row)·ε"],
  derivative_model_coef: ["slope: weight of ε", "for ε-prediction the slope is ε itself"],
  sample_coef: ["x_next: weight of x_t", "how much of x_t is kept"],
  model_coef: ["x_next: weight of ε", "how much predicted noise is removed"],
  x0_coef: ["x_next: weight of x̂₀", "how much of the model's clean guess goes in"],
  x0_prev_coef: ["x_next: weight of the previous x̂₀", "the guess of the step before (second order)"],
  x0_prev2_coef: ["x_next: weight of x̂₀ two steps back", "third order"],
  alpha_t: ["α_next", "DPM-Solver's signal scale after this step"],
  sigma_t: ["σ'_next", "DPM-Solver's noise scale after this step"],
  alpha_s0: ["α_now", "DPM-Solver's signal scale now"],
  sigma_s0: ["σ'_now", "DPM-Solver's noise scale now"],
  lambda_t: ["λ_next", "log(signal ÷ noise) after this step"],
  lambda_s0: ["λ_now", "log(signal ÷ noise) now"],
  lambda_s1: ["λ_before", "log(signal ÷ noise) one step back"],
  h: ["h", "step size in log(signal ÷ noise)"],
  r0: ["r", "the previous step's size ÷ this one's"],
};

export function coefficientLabel(name) {
  const lms = /^lms_coef_(\d+)$/.exec(name);
  if (lms) return [`weight of d${lms[1]}`, lms[1] === "0" ? "this step's slope" : `the slope ${lms[1]} step${lms[1] === "1" ? "" : "s"} back`];
  return COEFFICIENTS[name] || [name, ""];
}

// -- Upscaler ------------------------------------------------------------------------------------

function upscalerPanel(panel, run) {
  const last = run.steps[run.steps.length - 1];
  const shape = last.shape;
  const [, c, h, w] = shape;
  const s = shapes(run.manifest);
  const p = document.createElement("p");
  p.textContent = upscalerText(run, s); // the VAE's decode, or the fast decoder's (stage/final_decoder.js)
  const glance = glanceRow(panel);
  glance.first.append(p);
  const by = decoderOf(run) === "fast" ? "drawn by the fast decoder (TAESD)" : "decoded by the VAE";
  const { fig, canvas } = figure(`the image ${by}, ${s.image} (shown enlarged)`, "result");
  drawRgba(canvas, run.final);
  glance.second.append(fig);
  const all = allNumbers("the final latent's channels");
  panel.append(all.details);
  if (run.latents) all.body.append(channelStrip(`final latent, ${c}×${h}×${w}`, run.latents, shape, maxAbs(run.latents)));
  else panel.append(notExplained("the final latent"));
}

// -- the panel itself ----------------------------------------------------------------------------

/** The refiner's level 3 (guidance as arrows) folds away like the text panel's CLIP lesson. */
function levelThree(body) {
  const details = document.createElement("details");
  details.className = "level3";
  details.innerHTML = "<summary>Level 3: guidance as arrows, in the latent's own space</summary>";
  body.append(details);
  return details;
}

export function mountDetail(container, store) {
  let open = null;
  // x̂0 as the step strip showed it (the VAE or the preview decoder); where the strip only had the
  // linear map, a VAE decode for the steps someone looks at, each once.
  const decode = (run, step) => {
    if (step.preview.source !== "linear") return Promise.resolve(step.preview);
    if (!run.decoded.has(step.index)) run.decoded.set(step.index, window.sdlens.decode(step.tensors.x0, step.shape));
    return run.decoded.get(step.index);
  };

  function render() {
    const run = store.main;
    if (!open) return;
    const component = COMPONENTS.find((c) => c.id === open);
    container.replaceChildren();
    const header = document.createElement("div");
    header.className = "detail-header";
    header.innerHTML = `<h3></h3><button type="button" class="close" aria-label="close (Esc)">✕ close</button>`;
    header.querySelector("h3").textContent = `${component.title}: ${component.parts}`;
    header.querySelector(".close").addEventListener("click", close);
    const body = document.createElement("div");
    container.append(header, body);
    if (!run || !run.final) {
      body.textContent = run ? "Generating… this panel shows the new run when it is done." :
        "Generate an image (with “Explain every step” on) to look inside.";
      return;
    }
    if (open === "text") textPanel(body, run);
    if (open === "refiner") refinerPanel(body, run, store, decode);
    if (open === "upscaler") upscalerPanel(body, run);
    // Other modules' additions read the run's tensors: a run made with "Explain every step" off has none.
    if (run.explained) for (const draw of extensions[open]) draw(open === "refiner" ? levelThree(body) : body, run, store);
  }

  // Where the page was scrolled when the first panel opened: closing it goes back there.
  let scrolledFrom = null;
  const motion = () => (matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth");

  /** Opens panel `id`. `intoView: false` (the tour, which scrolls to its own target) leaves the page where it is. */
  function show(id, { intoView = true } = {}) {
    if (!open) scrolledFrom = window.scrollY;
    open = id;
    container.hidden = false;
    container.dispatchEvent(new CustomEvent("panel-open", { detail: { id } })); // expand.js grows the diagram
    render();
    container.querySelector(".close")?.focus({ preventScroll: true });
    // A panel that opened with little more than its heading on screen (under the grown diagram)
    // comes up into view once it has its full size; one already well in view stays where it is.
    d3.select(container).style("opacity", 0).style("transform", "scale(0.96)")
      .transition().duration(250).style("opacity", 1).style("transform", "scale(1)")
      .on("end", () => {
        if (intoView && open === id && container.getBoundingClientRect().top > innerHeight * 0.4) {
          container.scrollIntoView({ block: "start", behavior: motion() });
        }
      });
  }

  function close() {
    if (!open) return;
    const was = open;
    open = null;
    container.dispatchEvent(new CustomEvent("panel-close", { detail: { id: was } }));
    if (scrolledFrom !== null) window.scrollTo({ top: scrolledFrom, behavior: motion() });
    scrolledFrom = null;
    d3.select(container).transition().duration(200).style("opacity", 0).on("end", () => {
      if (open) return; // opened again while it faded: it stays
      container.hidden = true;
      document.querySelector(`#overview g.component[aria-label="open ${COMPONENTS.find((c) => c.id === was).title}"]`)
        ?.focus({ preventScroll: true });
    });
  }

  document.addEventListener("keydown", (event) => event.key === "Escape" && close());
  store.addEventListener("select", () => open === "refiner" && render());
  // A new main run replaces what the panel explains: until it finishes, the panel says so.
  store.addEventListener("run", ({ detail }) => open && detail.key === "main" && render());
  store.addEventListener("finish", ({ detail }) => open && detail.key === "main" && render());
  return { show, close, get open() { return open; } };
}
