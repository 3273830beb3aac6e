// The article under the tool: what each stage does, in plain words for a high-school class,
// quoting the live run's own numbers.

import { modifiedCodeNote } from "./code_editor.js";
import { karrasSummary, schedulerEntry, schedulerName } from "../schedulers.js";

const esc = (text) => String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

export function mountArticle(container, store) {
  function render() {
    const run = store.main;
    if (!run || !run.final) {
      container.innerHTML = `<h3>How does a computer draw from words?</h3>
        <p>Type a prompt and press Generate. This page then explains, with your own run's numbers,
        how this Stable Diffusion model turned your words into a picture.</p>`;
      return;
    }
    const s = run.settings;
    const t = run.tokens;
    const n = run.steps.length;
    const step = store.step();
    const padding = t.max_length - t.length;
    const g = Number(s.guidance);
    const formula = [true, "1", "true", "on"].includes(s.formula_below_one);
    const guided = g > 1 || (formula && g < 1);
    const [, c, h, w] = step.shape;
    container.innerHTML = `
      <h3>How this picture was made</h3>
      <h4>1. Words become numbers</h4>
      <p>The computer cannot read, so the tokenizer cuts “${esc(s.prompt)}” into pieces it knows, called tokens.
      Your prompt became <b>${t.length - 2}</b> tokens. With a start and an end token that makes ${t.length}; the other
      <b>${padding}</b> of the ${t.max_length} places are padding. ${t.dropped_note ? `<b>${esc(t.dropped_note)}</b>` : ""}
      The text encoder then turns every token into a list of ${run.textShape[2]} numbers that capture its meaning in context.</p>
      <h4>2. From noise to a picture, one step at a time</h4>
      <p>The picture starts as pure random noise: ${c}×${h}×${w} numbers drawn from seed <b>${esc(s.seed)}</b>.
      The same seed always gives the same noise, and so the same picture. In each of <b>${esc(s.steps)}</b> steps a network called
      the UNet looks at the noisy numbers and predicts which part of them is noise; the scheduler
      (<b>${esc(schedulerName(s.scheduler, s.karras))}</b>) then removes some of it. Right now you are looking
      at step <b>${step.step + 1}</b>, where the noise level is σ = ${step.sigma.toFixed(2)}.</p>
      <p>${esc(schedulerEntry(s.scheduler)?.summary || "")} ${s.karras ? esc(karrasSummary()) : ""}
      ${n !== Number(s.steps) ? `So this run of ${esc(s.steps)} steps called the UNet <b>${n}</b> times.` : ""}</p>
      <p>${guided
        ? `To follow your words more closely, the UNet predicts the noise twice per step: once without your prompt and once with it.
           The difference is what your prompt adds, and guidance g = <b>${esc(s.guidance)}</b> multiplies it: bigger g follows the
           prompt harder, at the cost of variety.`
        : `Guidance is ${esc(s.guidance)}. Any g ≤ 1 switches guidance off (as in diffusers): the UNet runs once per step,
           with your prompt only. So g = 0 does not ignore the prompt: g = 0 and g = 1 give the same picture.`}</p>
      <h4>3. From the small picture to the big one</h4>
      <p>All this happened on a small “latent” picture of ${c}×${h}×${w} numbers, which is much cheaper than working on
      pixels. At the end the VAE decoder blows it up into the ${run.final.width}×${run.final.height} image you see.
      It took ${((run.timings.wall_ms ?? run.timings.total_ms) / 1000).toFixed(1)} s on this computer (${esc(run.backend.label)}).</p>
      ${modifiedCodeNote(store)}`;
  }
  for (const type of ["finish", "select", "run"]) store.addEventListener(type, render);
  render();
}
