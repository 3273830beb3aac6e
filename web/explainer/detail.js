// Level 2: one component opened up, at the selected timestep. Every picture and number comes
// from the run in the store; `displayed` records exactly what is on screen, for the tests.

import { attentionView } from "./attention.js";
import { schedulerName } from "../schedulers.js";
import { drawRgba, drawValues, figure, legend, maxAbs } from "./colormaps.js";
import { COMPONENTS, shapes } from "./overview.js";

const d3 = globalThis.d3;
export const displayed = {};

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
  return row;
}

const fmt = (x) => (Math.abs(x) >= 100 ? x.toFixed(1) : Math.abs(x) >= 1 ? x.toFixed(3) : x.toPrecision(3));

// -- Text ----------------------------------------------------------------------------------------

function textPanel(panel, run) {
  const tokens = run.tokens;
  const [, n, hidden] = run.textShape;
  const intro = document.createElement("p");
  intro.textContent = `CLIP's tokenizer split your prompt into ${tokens.length - 2} tokens, framed by start and end ` +
    `tokens and padded to ${tokens.max_length}. The text encoder turns each position into ${hidden} numbers.`;
  const list = document.createElement("ol");
  list.className = "tokens";
  tokens.tokens.forEach((token, i) => {
    const li = document.createElement("li");
    li.className = i === 0 || i === tokens.length - 1 ? "special" : i >= tokens.length ? "padding" : "word";
    li.innerHTML = `<span class="tok"></span><span class="id">${tokens.ids[i]}</span>`;
    li.querySelector(".tok").textContent = token;
    if (i >= tokens.length + 2) li.hidden = true; // show the first two paddings; the rest are alike
    list.append(li);
  });
  const more = document.createElement("p");
  more.className = "note";
  more.textContent = `… and ${Math.max(0, tokens.max_length - tokens.length - 2)} more padding tokens (id ${tokens.ids[tokens.max_length - 1]}).`;
  panel.append(intro, list, more);
  if (tokens.dropped_words.length) {
    const dropped = document.createElement("p");
    dropped.className = "warning";
    dropped.textContent = `Cut off (beyond ${tokens.max_length} tokens): ${tokens.dropped_words.join(" ")}`;
    panel.append(dropped);
  }
  // Embedding heatmap: tokens down, dimensions across; and each token's vector length.
  const emb = run.textEmbeddings;
  const { fig, canvas } = figure(`text encoder output: ${n} tokens × ${hidden} dimensions`, "heatmap");
  drawValues(canvas, emb, hidden, n, { signed: true, scale: maxAbs(emb) });
  const norms = Array.from({ length: n }, (_, t) => Math.hypot(...emb.subarray(t * hidden, (t + 1) * hidden)));
  const normFig = normsChart(norms, tokens.length);
  const row = document.createElement("div");
  row.className = "row-pics";
  row.append(fig, normFig, legend(true, maxAbs(emb)));
  panel.append(row);
  displayed.text = { ids: tokens.ids.slice(), tokens: tokens.tokens.slice(), length: tokens.length, norms };
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

  // No "x_t as colours" picture: a linear map from latent channels to RGB does not fit this VAE
  // (its pictures turn grey-green while the image is a red disc), so the channels speak for x_t.
  panel.append(channelStrip("x_t: the noisy latent going in", tensors.latent, shape, maxAbs(tensors.latent)));

  if (guided) {
    panel.append(channelStrip("ε_uncond: noise predicted without your prompt", tensors.eps_uncond, shape, scale));
    panel.append(channelStrip("ε_cond: noise predicted with your prompt", tensors.eps_cond, shape, scale));
    panel.append(channelStrip("ε_cond − ε_uncond: what your prompt adds", diff, shape, maxAbs(diff)));
  } else {
    panel.append(channelStrip("ε: noise predicted with your prompt (guidance off: one pass)", tensors.eps_cond, shape, scale));
  }
  const formula = document.createElement("p");
  formula.className = "formula";
  formula.textContent = guided
    ? `ε = ε_uncond + g·(ε_cond − ε_uncond) with g = ${g}: the prompt's difference is pushed ${g}× as hard.`
    : `Guidance g = ${g} ≤ 1 switches guidance off: ε = ε_cond, and the model runs once per step.`;
  panel.append(formula);
  panel.append(channelStrip("ε: the guided noise the scheduler uses", tensors.eps_guided, shape, scale));

  const update = document.createElement("div");
  update.className = "scheduler";
  update.innerHTML = `<h4></h4><p class="formula"></p><table></table>`;
  update.querySelector("h4").textContent = `${schedulerName(run.settings.scheduler, run.settings.karras)} update`;
  update.querySelector(".formula").textContent = schedulerFormula(coefficients);
  const table = update.querySelector("table");
  for (const [name, value] of Object.entries(coefficients)) {
    const tr = table.insertRow();
    tr.insertCell().textContent = name;
    tr.insertCell().textContent = fmt(value);
  }
  panel.append(update);

  const x0Row = document.createElement("div");
  x0Row.className = "strip";
  x0Row.innerHTML = "<h4>x̂₀: the model's current guess of the clean image</h4>";
  const by = step.preview.source === "preview_decoder" ? "the preview decoder (TAESD)" : "the VAE";
  const x0 = figure(`decoded by ${by} (${c}×${h}×${w} → 3×${h * run.manifest.vae_scale_factor}×${w * run.manifest.vae_scale_factor})`);
  x0Row.append(x0.fig);
  panel.append(x0Row);
  decode(run, step).then((image) => drawRgba(x0.canvas, image));
  panel.append(attentionView(run, store, "refiner", decode));

  displayed.refiner = {
    index: store.selected, guidance: g, timestep: step.timestep,
    eps_uncond: guided ? Array.from(tensors.eps_uncond) : null,
    eps_cond: Array.from(tensors.eps_cond), eps_guided: Array.from(tensors.eps_guided),
    difference: guided ? Array.from(diff) : null, coefficients: { ...coefficients },
  };
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
    const prev = k.x0_prev_coef ? ` + ${fmt(k.x0_prev_coef)}·x̂₀(previous step)` : "";
    return `x_next = ${fmt(k.sample_coef)}·x_t + ${fmt(k.x0_coef)}·x̂₀${prev}`;
  }
  if ("sample_coef" in k && "model_coef" in k) {
    const noise = k.noise_coef ? ` + ${fmt(k.noise_coef)}·fresh noise` : "";
    return `x_next = ${fmt(k.sample_coef)}·x_t + ${fmt(k.model_coef)}·ε${noise}   and   x̂₀ = ${fmt(k.x0_sample_coef)}·x_t + ${fmt(k.x0_model_coef)}·ε`;
  }
  if ("lms_coef_0" in k) {
    const terms = Object.keys(k).filter((n) => n.startsWith("lms_coef_")).map((n, j) => `${fmt(k[n])}·d${j}`);
    return `x_next = x_t + ${terms.join(" + ")}   (d = the slopes of the last steps)`;
  }
  return "x_next from x_t and ε with the numbers below";
}

// -- Upscaler ------------------------------------------------------------------------------------

function upscalerPanel(panel, run) {
  const last = run.steps[run.steps.length - 1];
  const shape = last.shape;
  const [, c, h, w] = shape;
  const s = shapes(run.manifest);
  const p = document.createElement("p");
  p.textContent = `The refiner's last latent (${s.latent}) is scaled by 1/${run.manifest.vae_scaling_factor} and ` +
    `decoded by the VAE into the image (${s.image}): each latent cell becomes ${run.manifest.vae_scale_factor}×${run.manifest.vae_scale_factor} pixels.`;
  panel.append(p);
  panel.append(channelStrip(`final latent, ${c}×${h}×${w}`, run.latents, shape, maxAbs(run.latents)));
  const { fig, canvas } = figure(`decoded image, ${s.image}`);
  drawRgba(canvas, run.final);
  panel.append(fig);
}

// -- the panel itself ----------------------------------------------------------------------------

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
      body.textContent = "Generate an image (with “Explain every step” on) to look inside.";
      return;
    }
    if (open === "text") textPanel(body, run);
    if (open === "refiner") refinerPanel(body, run, store, decode);
    if (open === "upscaler") upscalerPanel(body, run);
    for (const draw of extensions[open]) draw(body, run, store);
  }

  function show(id) {
    open = id;
    container.hidden = false;
    container.dispatchEvent(new CustomEvent("panel-open", { detail: { id } })); // expand.js grows the diagram
    render();
    d3.select(container).style("opacity", 0).style("transform", "scale(0.96)")
      .transition().duration(250).style("opacity", 1).style("transform", "scale(1)");
    container.querySelector(".close")?.focus();
  }

  function close() {
    if (!open) return;
    const was = open;
    open = null;
    container.dispatchEvent(new CustomEvent("panel-close", { detail: { id: was } }));
    d3.select(container).transition().duration(200).style("opacity", 0).on("end", () => {
      container.hidden = true;
      document.querySelector(`#overview g.component[aria-label="open ${COMPONENTS.find((c) => c.id === was).title}"]`)?.focus();
    });
  }

  document.addEventListener("keydown", (event) => event.key === "Escape" && close());
  store.addEventListener("select", () => open === "refiner" && render());
  store.addEventListener("finish", () => open && render());
  return { show, close, get open() { return open; } };
}
