// Compare two runs that differ in one thing (the prompt, the scheduler or the step count) and
// share everything else, the seed above all: both start from the very same noise, so whatever
// differs between the pictures is caused by that one change. This is Diffusion Explainer's core
// insight: the prompt steers a shared starting point to different images.
//
// Shows: the words that differ, both runs side by side at the selected step, the two latent
// trajectories projected to 2-D (PCA), and the distance between the two latents at each step.

import { drawRgba } from "./colormaps.js";
import { COLOURS, distances, drawDistance, drawProjection, matchingStep, umapProjection } from "./compare_charts.js";
import { dot } from "./projection.js";
import { formSettings, isOn, loadD3 } from "./settings.js";
import { DESCRIPTIONS } from "./umap.js";
import { fillSchedulerSelect, parseSchedulerChoice, schedulerName } from "../schedulers.js";

const $ = (id) => document.getElementById(id);
// (re-exported for older importers and the tests: the charts and the form live in their own modules)
export { COLOURS, distances, formSettings, isOn, loadD3, matchingStep };
const MODES = { prompt: "prompt", scheduler: "scheduler", steps: "steps" }; // mode → the setting it changes
const SETTING_KEYS = ["prompt", "negative", "seed", "steps", "guidance", "scheduler", "karras", "formula_below_one", "decoder", "model"];

// What to compare, kept here so that links and starters can set it before the view is mounted.
const choice = { mode: "prompt", values: { prompt: "", scheduler: "", steps: "" } };
let view = null; // the mounted view's elements and redraw function

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
      container.closest("details")?.setAttribute("open", ""); // (its fold under the stage)
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
  drawProjection(d3, container.querySelector("#compare-projection"), store, a, b, selected, space, method, describe);
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
