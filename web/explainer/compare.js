// Compare two runs that differ in one thing (the prompt, the scheduler or the step count) and
// share everything else, the seed above all: both start from the very same noise, so whatever
// differs between the pictures is caused by that one change. This is Diffusion Explainer's core
// insight: the prompt steers a shared starting point to different images.
//
// Shows: the words that differ, both runs side by side at the selected step, the two latent
// trajectories projected to 2-D (PCA), and the distance between the two latents at each step.

import { drawRgba } from "./colormaps.js";
import { dot, gramMatrix, pca2FromGram } from "./projection.js";
import { DESCRIPTIONS, umap2 } from "./umap.js";
import { fillSchedulerSelect, parseSchedulerChoice, schedulerName } from "../schedulers.js";

const $ = (id) => document.getElementById(id);
export const COLOURS = { main: "#4e79a7", compare: "#f28e2b" }; // Tableau 10 blue/orange: colour-blind safe
const MODES = { prompt: "prompt", scheduler: "scheduler", steps: "steps" }; // mode → the setting it changes
const SETTING_KEYS = ["prompt", "negative", "seed", "steps", "guidance", "scheduler", "karras", "formula_below_one", "model"];

// What to compare, kept here so that links and starters can set it before the view is mounted.
const choice = { mode: "prompt", values: { prompt: "", scheduler: "", steps: "" } };
let view = null; // the mounted view's elements and redraw function

// ---------------------------------------------------------------------------------------------
// Shared helpers (links.js, sweep.js and starters.js use them too)

/** A yes/no setting as forms, links and the API give it: true, "1", "true", "on". */
export const isOn = (value) => value === true || ["1", "true", "yes", "on"].includes(String(value ?? "").toLowerCase());

/** The settings form as `sdlens.generate` takes them (as app.js reads it). */
export function formSettings() {
  const value = (id) => ($(id) ? $(id).value : "");
  const guidance = value("guidance").trim();
  return {
    prompt: value("prompt"),
    negative: value("negative"),
    seed: value("seed").trim(),
    steps: value("steps").trim(),
    guidance,
    scheduler: value("scheduler"),
    karras: Boolean($("karras")?.checked && !$("karras")?.disabled),
    formula_below_one: $("formula_below_one")?.checked ? "1" : "",
    model: value("model"),
  };
}

/** D3 is vendored as a UMD file: load it with a classic script (once) and use window.d3. */
let d3Loading = null;
export function loadD3() {
  if (window.d3) return Promise.resolve(window.d3);
  d3Loading ||= new Promise((resolve, reject) => {
    const script = document.querySelector('script[src$="vendor/d3/d3.min.js"]') || document.createElement("script");
    script.addEventListener("load", () => resolve(window.d3));
    script.addEventListener("error", () => reject(new Error("could not load /vendor/d3/d3.min.js")));
    if (!script.src) {
      script.src = "vendor/d3/d3.min.js";
      document.head.append(script);
    }
  });
  return d3Loading;
}

export function getCompare() {
  return { mode: choice.mode, value: choice.values[choice.mode] };
}

/** After a starter pair filled both prompts: show the user where B is. */
export function announceCompare() {
  view?.announce();
}

/** Set what to compare (from a link or a starter pair); the view follows if it is mounted. */
export function setCompare(mode, value) {
  if (!MODES[mode]) return;
  choice.mode = mode;
  if (value !== undefined && value !== null) choice.values[mode] = String(value);
  if (view) view.syncControls();
}

/**
 * Run the comparison: the main run with `settings`, then the same settings with the compared one
 * changed. One generation at a time, so the second waits for the first. Resolves to the two
 * results, or null when stopped.
 */
export async function runComparison(settings = formSettings(), mode = choice.mode, value = choice.values[mode]) {
  const key = MODES[mode];
  // a scheduler choice may carry Karras sigmas ("dpmpp_2m karras"); B gets exactly what it names
  const second = key === "scheduler" ? { ...settings, ...parseSchedulerChoice(value) } : { ...settings, [key]: value };
  // A bad B value is found before A runs, and reported by B's own field (not by A's in the form).
  const check = await window.sdlens.check(second);
  if (!check.ok && check.field === key) {
    const err = new Error(check.message);
    err.side = "B";
    throw err;
  }
  const a = await window.sdlens.explain(settings, "main");
  if (a.cancelled) return null;
  const b = await window.sdlens.explain(second, "compare");
  return b.cancelled ? null : [a, b];
}

// ---------------------------------------------------------------------------------------------
// Word-level diff: longest common subsequence of the two word lists

/** For two strings, each word with a flag saying whether it is missing from the other string. */
export function wordDiff(a, b) {
  const wa = a.split(/\s+/).filter(Boolean);
  const wb = b.split(/\s+/).filter(Boolean);
  const same = (x, y) => x.toLowerCase() === y.toLowerCase(); // CLIP lower-cases everything
  // lcs[i][j]: length of the LCS of wa[i:] and wb[j:]
  const lcs = Array.from({ length: wa.length + 1 }, () => new Array(wb.length + 1).fill(0));
  for (let i = wa.length - 1; i >= 0; i--) {
    for (let j = wb.length - 1; j >= 0; j--) {
      lcs[i][j] = same(wa[i], wb[j]) ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const left = wa.map((word) => ({ word, changed: true }));
  const right = wb.map((word) => ({ word, changed: true }));
  for (let i = 0, j = 0; i < wa.length && j < wb.length;) {
    if (same(wa[i], wb[j])) {
      left[i++].changed = false;
      right[j++].changed = false;
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) i++;
    else j++;
  }
  return [left, right];
}

function renderWords(element, words) {
  element.replaceChildren();
  if (!words.length) element.append(Object.assign(document.createElement("em"), { textContent: "(empty)" }));
  words.forEach(({ word, changed }, i) => {
    if (i) element.append(" ");
    if (!changed) return element.append(word);
    const mark = document.createElement("mark");
    mark.className = "diff-word";
    mark.textContent = word;
    element.append(mark);
  });
}

// ---------------------------------------------------------------------------------------------
// The view

export function mountCompare(container, store) {
  if (!container || container.dataset.mounted) return;
  container.dataset.mounted = "compare";
  container.classList.add("compare");
  container.innerHTML = `
    <h2>Compare two runs</h2>
    <p class="hint">Both runs use the same seed, so they start from the same random noise pattern. Change
      one thing and watch where the two paths part. (Euler-type schedulers first multiply that noise by
      their largest noise level, so a scheduler comparison starts from the same pattern at another scale.)</p>
    <div class="compare-controls">
      <label>Compare
        <select id="compare-mode">
          <option value="prompt">prompt</option>
          <option value="scheduler">scheduler</option>
          <option value="steps">steps</option>
        </select>
      </label>
      <label data-mode="prompt">Second prompt (B)
        <input id="compare-prompt" type="text" placeholder="the same prompt with one word changed">
      </label>
      <label data-mode="scheduler">Second scheduler (B)
        <select id="compare-scheduler"></select>
      </label>
      <label data-mode="steps">Second step count (B)
        <input id="compare-steps" type="number" min="1" max="1000">
      </label>
      <button type="button" id="compare-run">Compare</button>
    </div>
    <span id="compare-b-message" class="field-message" role="status"></span>
    <dl class="prompt-diff" aria-live="polite">
      <dt class="run-a">A</dt><dd id="compare-diff-a"></dd>
      <dt class="run-b">B</dt><dd id="compare-diff-b"></dd>
    </dl>
    <div id="compare-status" class="compare-status" role="status"></div>
    <p id="compare-start" class="compare-start" hidden></p>
    <div class="compare-results" hidden>
      <div class="compare-side">
        <figure data-run="main"><canvas aria-label="run A: predicted clean image at this step"></canvas><figcaption></figcaption></figure>
        <figure data-run="compare"><canvas aria-label="run B: predicted clean image at this step"></canvas><figcaption></figcaption></figure>
        <label class="compare-step">Step <input id="compare-step" type="range" min="0" max="0" value="0"></label>
        <label class="compare-method">Projection
          <select id="compare-method">
            <option value="pca">PCA (exact)</option>
            <option value="umap">UMAP (seeded)</option>
          </select>
        </label>
        <label class="compare-space">Project
          <select id="compare-space">
            <option value="latent">the latent x_t</option>
            <option value="x0">the predicted clean latent x̂0</option>
          </select>
        </label>
      </div>
      <figure class="compare-projection">
        <svg id="compare-projection" role="img" aria-label="the two latent trajectories, projected to 2-D"></svg>
        <figcaption>The latents of both runs, one point per step, in two dimensions.
          <span id="compare-method-note"></span> Click a point to select its step.</figcaption>
      </figure>
      <figure class="compare-distance">
        <svg id="compare-distance" role="img" aria-label="distance between the two runs at each step"></svg>
        <figcaption>How far apart the two latents are (L2 distance) at each step of run A.</figcaption>
      </figure>
    </div>`;

  const el = (id) => container.querySelector(`#${id}`);
  const schedulers = el("compare-scheduler");
  fillSchedulerSelect(schedulers, { karrasVariants: true });
  if (!choice.values.scheduler) choice.values.scheduler = $("scheduler")?.value === "euler" ? "ddim" : "euler";
  if (!choice.values.steps) choice.values.steps = String(Math.max(1, Math.round(Number($("steps")?.value || 20) / 2)));

  const inputs = { prompt: el("compare-prompt"), scheduler: schedulers, steps: el("compare-steps") };
  const syncControls = () => {
    el("compare-mode").value = choice.mode;
    for (const [mode, input] of Object.entries(inputs)) {
      input.value = choice.values[mode];
      input.closest("label").hidden = mode !== choice.mode;
    }
    inputs[choice.mode].closest("label").append(el("compare-b-message")); // B's messages sit by B's field
    drawDiff();
  };
  const drawDiff = () => {
    const edited = store.runs.get("compare")?.modifiedCode;
    if (edited?.length) { // B is the code editor's run: same settings, other code
      el("compare-diff-a").textContent = "the standard code";
      el("compare-diff-b").textContent = `the same settings and seed, with your modified ${edited.join(" and ")} code`;
      return;
    }
    const settings = formSettings();
    const key = MODES[choice.mode];
    const current = key === "scheduler" ? `${settings.scheduler}${settings.karras ? " karras" : ""}` : settings[key];
    const [a, b] = wordDiff(valueLabel(key, current), valueLabel(key, choice.values[choice.mode]));
    renderWords(el("compare-diff-a"), a);
    renderWords(el("compare-diff-b"), b);
  };
  el("compare-mode").addEventListener("change", (event) => setCompare(event.target.value));
  for (const [mode, input] of Object.entries(inputs)) {
    input.addEventListener("input", () => {
      choice.values[mode] = input.value;
      el("compare-b-message").textContent = "";
      drawDiff();
    });
  }
  for (const id of ["prompt", "scheduler", "karras", "steps"]) {
    $(id)?.addEventListener("input", drawDiff);
    $(id)?.addEventListener("change", drawDiff);
  }

  const status = (text) => (el("compare-status").textContent = text);
  el("compare-run").addEventListener("click", async () => {
    const button = el("compare-run");
    button.disabled = true;
    status("Running A, then B…");
    el("compare-b-message").textContent = "";
    try {
      const done = await runComparison();
      status(done ? "" : "Stopped.");
    } catch (err) {
      if (err.side === "B") el("compare-b-message").textContent = `B: ${err.message}`;
      status(`Could not compare: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  });

  el("compare-step").addEventListener("input", (event) => store.select(Number(event.target.value)));
  el("compare-space").addEventListener("change", () => schedule());
  el("compare-method").addEventListener("change", () => schedule());

  let frame = 0;
  const schedule = () => {
    if (!frame) frame = requestAnimationFrame(() => {
      frame = 0;
      drawDiff(); // the page writes each run's settings into the form, without input events
      draw(container, store).catch((err) => status(`Could not draw the comparison: ${err.message}`));
    });
  };
  for (const type of ["run", "step", "finish", "select"]) store.addEventListener(type, schedule);
  // The charts are drawn at the width they are shown (sizedFor): draw them again when it changes.
  let shownWidth = 0;
  new ResizeObserver(([entry]) => {
    const width = Math.round(entry.contentRect.width);
    if (width !== shownWidth) {
      shownWidth = width;
      schedule();
    }
  }).observe(container);
  view = {
    syncControls,
    /** A starter pair was put in: say where B went, and bring this view into sight. */
    announce() {
      status("A starter pair: A is in the prompt box above, B is in this field. Press Compare to run both.");
      container.scrollIntoView({ behavior: "smooth", block: "start" });
      el("compare-run").focus({ preventScroll: true });
      const field = inputs[choice.mode];
      field.classList.remove("flash");
      void field.offsetWidth; // restart the highlight
      field.classList.add("flash");
    },
  };
  syncControls();
  schedule();
}

// ---------------------------------------------------------------------------------------------
// Drawing

/** The step of `run` at the same fraction of the run as step `index` of a run of `count` steps. */
export function matchingStep(index, count, run) {
  const n = run.steps.length;
  if (!n) return null;
  const fraction = count > 1 ? index / (count - 1) : 1;
  return run.steps[Math.min(n - 1, Math.round(fraction * (n - 1)))];
}

async function draw(container, store) {
  const a = store.runs.get("main");
  const b = store.runs.get("compare");
  const results = container.querySelector(".compare-results");
  const start = container.querySelector("#compare-start");
  results.hidden = !(a?.final && b?.final && a.explained && b.explained && a.steps.length && b.steps.length);
  start.hidden = results.hidden;
  if (results.hidden) {
    if (a?.final && b?.final && !a.explained) {
      container.querySelector("#compare-status").textContent =
        "Run A was redone with “Explain every step” off: press Compare to compare again.";
    }
    return;
  }
  const d3 = await loadD3();
  const selected = Math.min(store.selected, a.steps.length - 1);
  const slider = container.querySelector("#compare-step");
  slider.max = a.steps.length - 1;
  slider.value = selected;
  const space = container.querySelector("#compare-space").value;
  const note = staleNote(a, b);
  container.querySelector("#compare-status").textContent = note;
  start.textContent = startNote(a, b);
  drawSideBySide(container, store, a, b, selected);
  const method = container.querySelector("#compare-method").value;
  container.querySelector("#compare-method-note").textContent = DESCRIPTIONS[method];
  if (method === "umap") await umapProjection(a, b, space);
  drawProjection(d3, container.querySelector("#compare-projection"), store, a, b, selected, space, method);
  drawDistance(d3, container.querySelector("#compare-distance"), store, a, b, selected, space);
}

/** A setting as text, with an unset yes/no setting equal to "" (a run from the API may omit it). */
const same = (value) => (value === undefined || value === null || value === false ? "" : value === true ? "1" : String(value));

/** Say so when run A was redone with other settings after B: they no longer differ in one thing. */
function staleNote(a, b) {
  const differ = SETTING_KEYS.filter((k) => same(a.settings[k]) !== same(b.settings[k]));
  return differ.length > 1 ? `A and B differ in ${differ.join(", ")}: press Compare to redo B from A's settings.` : "";
}

/** Both runs start from the same noise pattern; say by how much their starting latents differ in scale. */
export function startScale(a, b) {
  const u = a.steps[0]?.tensors?.latent;
  const v = b.steps[0]?.tensors?.latent;
  if (!u || !v || u.length !== v.length) return null;
  return Math.sqrt(dot(v, v) / dot(u, u));
}

function startNote(a, b) {
  const ratio = startScale(a, b);
  if (ratio === null) return "";
  if (Math.abs(ratio - 1) < 0.01) return "Both runs started from exactly the same latent x_T.";
  return `Both runs started from the same noise pattern, but B's starting latent is ${ratio.toFixed(2)}× A's ` +
    `(each scheduler scales the noise by its own starting noise level).`;
}

function describe(run, other) {
  if (run.modifiedCode?.length) return run.codeLabel || `modified code (${run.modifiedCode.join(" and ")})`; // (code_editor.js names it)
  const differ = SETTING_KEYS.filter((k) => same(run.settings[k]) !== same(other.settings[k]));
  const key = differ[0] === "karras" ? "scheduler" : differ[0] || "prompt"; // Karras is part of the scheduler's name
  const value = key === "scheduler" ? `${run.settings.scheduler}${run.settings.karras ? " karras" : ""}` : run.settings[key];
  const text = key === "prompt" ? `“${run.settings.prompt}”` : valueLabel(key, value);
  return text.length > 60 ? `${text.slice(0, 57)}…”` : text;
}

/** A setting's value in words: "4 steps", "DDIM scheduler", or the prompt itself. */
function valueLabel(key, value) {
  if (key === "prompt") return String(value);
  if (key === "steps") return `${value} steps`;
  if (key === "scheduler") {
    const { scheduler, karras } = parseSchedulerChoice(value);
    return `${schedulerName(scheduler, karras)} scheduler`;
  }
  return `${key} ${value}`;
}

const decodes = new WeakMap(); // run → Map(step index → decoded x̂0 image)

function drawSideBySide(container, store, a, b, selected) {
  const stepA = a.steps[selected];
  const stepB = matchingStep(selected, a.steps.length, b);
  for (const [key, run, step, other] of [["main", a, stepA, b], ["compare", b, stepB, a]]) {
    const figure = container.querySelector(`.compare-side figure[data-run="${key}"]`);
    const canvas = figure.querySelector("canvas");
    figure.style.setProperty("--run-colour", COLOURS[key]);
    drawRgba(canvas, decodes.get(run)?.get(step.index) || step.preview);
    figure.querySelector("figcaption").textContent =
      `${key === "main" ? "A" : "B"}: ${describe(run, other)}, step ${step.index + 1} of ${run.steps.length}, t=${Math.round(step.timestep)}`;
    decodeWhenIdle(run, step).then((image) => {
      if (image && store.selected === selected) drawRgba(canvas, image);
    });
  }
}

/** The VAE's picture of x̂0, once the worker is free (decoding during a run would compete with it). */
async function decodeWhenIdle(run, step) {
  let cache = decodes.get(run);
  if (!cache) decodes.set(run, (cache = new Map()));
  if (cache.has(step.index)) return cache.get(step.index);
  if (step.preview.source !== "linear") return null; // the strip's picture is x̂0 decoded already
  const running = $("stop") && !$("stop").disabled;
  if (running || !step.tensors?.x0 || run.manifest !== window.sdlens.store.main?.manifest) return null;
  cache.set(step.index, null); // one request per step
  try {
    const image = await window.sdlens.decode(step.tensors.x0, step.shape);
    cache.set(step.index, image);
    return image;
  } catch {
    cache.delete(step.index);
    return null; // the quick preview stays
  }
}


const runIds = new WeakMap();
let nextRunId = 0;
const runId = (run) => (runIds.has(run) ? runIds.get(run) : (runIds.set(run, ++nextRunId), nextRunId));
let projectionCache = { key: null, value: null };

// Dot products between step tensors, kept while both tensors live: during a run each new step
// then costs n dot products, not a whole new Gram matrix.
const dots = new WeakMap();
function cachedDot(a, b) {
  let row = dots.get(a);
  if (!row) dots.set(a, (row = new WeakMap()));
  if (!row.has(b)) row.set(b, dot(a, b));
  return row.get(b);
}

/** PCA of both runs' latents together (one shared plane), recomputed only when the data change. */
function project(a, b, space) {
  const key = [space, runId(a), a.steps.length, runId(b), b.steps.length].join("|");
  if (projectionCache.key !== key) {
    const vectors = [...a.steps, ...b.steps].map((s) => s.tensors[space === "x0" ? "x0" : "latent"]);
    const sameLength = vectors.every((v) => v && v.length === vectors[0].length);
    projectionCache = { key, value: sameLength ? pca2FromGram(gramMatrix(vectors, cachedDot)) : null };
  }
  return projectionCache.value;
}

const SIZE = { width: 440, height: 300, margin: { top: 14, right: 16, bottom: 40, left: 52 } };

/** SIZE at the width the chart is shown (within limits): on a phone a 440-wide drawing scaled
 * down to ~220 px would shrink its 11 px labels to 5 px. */
function sizedFor(svg) {
  const shown = svg.getBoundingClientRect().width;
  return { ...SIZE, width: shown > 0 ? Math.max(260, Math.min(560, Math.round(shown))) : SIZE.width };
}
const LEGEND_HEIGHT = 36; // the projection's legend sits above the plot, never on the points

function frame(d3, svg, xLabel, yLabel, size = SIZE) {
  const { width, height, margin } = size;
  const root = d3.select(svg).attr("viewBox", `0 0 ${width} ${height}`);
  root.selectAll("*").remove();
  root.append("g").attr("class", "axis x").attr("transform", `translate(0,${height - margin.bottom})`);
  root.append("g").attr("class", "axis y").attr("transform", `translate(${margin.left},0)`);
  root.append("text").attr("class", "axis-label").attr("x", (margin.left + width - margin.right) / 2)
    .attr("y", height - 6).attr("text-anchor", "middle").text(xLabel);
  root.append("text").attr("class", "axis-label").attr("transform", `translate(13,${(margin.top + height - margin.bottom) / 2}) rotate(-90)`)
    .attr("text-anchor", "middle").text(yLabel);
  return root;
}

// UMAP of both runs' latents, computed once per pair of runs (it is iterative, unlike PCA).
let umapCache = { key: null, value: null };
async function umapProjection(a, b, space) {
  const key = [space, runId(a), a.steps.length, runId(b), b.steps.length].join("|");
  if (umapCache.key !== key) {
    const vectors = [...a.steps, ...b.steps].map((s) => s.tensors[space === "x0" ? "x0" : "latent"]);
    const sameLength = vectors.every((v) => v && v.length === vectors[0].length);
    umapCache = { key, value: sameLength ? await umap2(vectors, 42) : null };
  }
  return umapCache.value;
}

function drawProjection(d3, svg, store, a, b, selected, space, method = "pca") {
  const result = method === "umap" ? umapCache.value : project(a, b, space);
  if (!result) {
    d3.select(svg).selectAll("*").remove();
    return;
  }
  const size = { ...sizedFor(svg), height: SIZE.height + LEGEND_HEIGHT, margin: { ...SIZE.margin, top: SIZE.margin.top + LEGEND_HEIGHT } };
  const { width, height, margin } = size;
  const percent = (k) => (result.total > 0 ? ` (${((100 * result.variance[k]) / result.total).toFixed(0)} % of the spread)` : "");
  const axis = method === "umap" ? "UMAP" : "direction";
  const root = frame(d3, svg, `${axis} 1${percent(0)}`, `${axis} 2${percent(1)}`, size);
  const points = result.points;
  const runs = [
    { key: "main", run: a, points: points.slice(0, a.steps.length) },
    { key: "compare", run: b, points: points.slice(a.steps.length) },
  ];
  const extent = (k) => d3.extent(points, (p) => p[k]);
  const pad = ([lo, hi]) => (hi - lo > 0 ? [lo - (hi - lo) * 0.06, hi + (hi - lo) * 0.06] : [lo - 1, hi + 1]);
  const x = d3.scaleLinear().domain(pad(extent(0))).range([margin.left, width - margin.right]);
  const y = d3.scaleLinear().domain(pad(extent(1))).range([height - margin.bottom, margin.top]);
  root.select(".axis.x").call(d3.axisBottom(x).ticks(5));
  root.select(".axis.y").call(d3.axisLeft(y).ticks(5));
  const line = d3.line().x((p) => x(p[0])).y((p) => y(p[1]));
  const selectedB = matchingStep(selected, a.steps.length, b).index;

  for (const { key, run, points: pts } of runs) {
    const group = root.append("g").attr("class", "run").attr("data-run", key);
    group.append("path").attr("class", "trajectory").attr("data-run", key).attr("d", line(pts))
      .attr("fill", "none").attr("stroke", COLOURS[key]).attr("stroke-width", 2)
      .attr("stroke-dasharray", key === "compare" ? "6 3" : null); // not by colour alone
    group.selectAll("circle").data(pts).join("circle")
      .attr("class", (p, i) => `point${i === (key === "main" ? selected : selectedB) ? " selected" : ""}`)
      .attr("data-step", (p, i) => i)
      .attr("cx", (p) => x(p[0])).attr("cy", (p) => y(p[1]))
      .attr("r", (p, i) => (i === (key === "main" ? selected : selectedB) ? 6 : 3))
      .attr("fill", COLOURS[key]).attr("stroke", (p, i) => (i === (key === "main" ? selected : selectedB) ? "#1d232b" : "#fff"))
      .style("cursor", "pointer")
      .on("click", (event, p) => {
        const i = pts.indexOf(p);
        // A step of B selects A's step at the same fraction of the run.
        const n = run.steps.length;
        store.select(key === "main" ? i : Math.round((n > 1 ? i / (n - 1) : 1) * (a.steps.length - 1)));
      })
      .append("title").text((p, i) => `${key === "main" ? "A" : "B"}, step ${i + 1}, t=${Math.round(run.steps[i].timestep)}`);
    group.append("text").attr("class", "start-label").attr("x", x(pts[0][0]) + 7).attr("y", y(pts[0][1]) - 7)
      .text("start"); // the same noise: the two labels coincide unless the scheduler scales it
  }
  legend(root, a, b, width);
}

function legend(root, a, b, width = SIZE.width) {
  // About 6 px a character at 11 px: a long prompt is cut to the chart's width (whole in its tooltip).
  const room = Math.max(12, Math.floor((width - SIZE.margin.left - 30) / 6));
  const fit = (text) => (text.length > room ? `${text.slice(0, room - 1)}…` : text);
  const g = root.append("g").attr("class", "legend").attr("transform", `translate(${SIZE.margin.left},4)`);
  [["main", a, b, "A"], ["compare", b, a, "B"]].forEach(([key, run, other, name], i) => {
    const row = g.append("g").attr("transform", `translate(0,${i * 16})`);
    row.append("line").attr("x2", 18).attr("y1", 5).attr("y2", 5).attr("stroke", COLOURS[key]).attr("stroke-width", 2)
      .attr("stroke-dasharray", key === "compare" ? "6 3" : null);
    const text = `${name}: ${describe(run, other)}`;
    row.append("text").attr("x", 24).attr("y", 9).text(fit(text)).append("title").text(text);
  });
}

/** L2 distance between A's step i and B's step at the same fraction of its run. */
export function distances(a, b, space = "latent") {
  const key = space === "x0" ? "x0" : "latent";
  return a.steps.map((step, i) => {
    const u = step.tensors[key];
    const v = matchingStep(i, a.steps.length, b).tensors[key];
    if (!u || !v || u.length !== v.length) return NaN;
    let sum = 0;
    for (let k = 0; k < u.length; k++) sum += (u[k] - v[k]) ** 2;
    return Math.sqrt(sum);
  });
}

function drawDistance(d3, svg, store, a, b, selected, space) {
  const values = distances(a, b, space);
  const size = sizedFor(svg);
  const { width, height, margin } = size;
  const root = frame(d3, svg, "step of run A", space === "x0" ? "distance between the x̂0" : "distance between the latents", size);
  const x = d3.scaleLinear().domain([1, Math.max(2, values.length)]).range([margin.left, width - margin.right]);
  const y = d3.scaleLinear().domain([0, d3.max(values, (v) => (Number.isFinite(v) ? v : 0)) || 1]).nice()
    .range([height - margin.bottom, margin.top]);
  root.select(".axis.x").call(d3.axisBottom(x).tickValues(x.ticks(8).filter(Number.isInteger)).tickFormat(d3.format("d")));
  root.select(".axis.y").call(d3.axisLeft(y).ticks(5));
  const line = d3.line().defined(Number.isFinite).x((v, i) => x(i + 1)).y((v) => y(v));
  root.append("path").attr("class", "distance-line").attr("d", line(values))
    .attr("fill", "none").attr("stroke", "#59a14f").attr("stroke-width", 2);
  const data = values.map((v, i) => ({ v, i }));
  root.append("g").selectAll("circle").data(data).join("circle")
    .attr("class", (d) => `point${d.i === selected ? " selected" : ""}`)
    .attr("data-step", (d) => d.i)
    .attr("cx", (d) => x(d.i + 1)).attr("cy", (d) => y(Number.isFinite(d.v) ? d.v : 0))
    .attr("r", (d) => (d.i === selected ? 6 : 3)).attr("fill", "#59a14f")
    .attr("stroke", (d) => (d.i === selected ? "#1d232b" : "#fff"))
    .style("cursor", "pointer")
    .on("click", (event, d) => store.select(d.i))
    .append("title").text((d) => `step ${d.i + 1}: ${d.v.toPrecision(4)}`);
}
