// The settings form: reading it, writing a run's settings into it, the scheduler and Karras boxes,
// and the message line beside each field. app.js runs the form; the views read it through
// explainer/settings.js.

import { isOn } from "./explainer/settings.js";
import { guidanceAdvice } from "./messages.js";
import { karrasValue, schedulerId, schedulerName, supportsKarras } from "./schedulers.js";
import { decoderValue } from "./decoders.js";

const $ = (id) => document.getElementById(id);
/** What else shows a run's settings (the model card's word check, the picture panel): each is
 * called with the settings whenever they are written into the form. */
const followers = [];
export const followForm = (follower) => followers.push(follower);

/** Guidance: a continuous slider (0 allowed) kept in step with the exact number field, and its note. */
export function mountGuidanceFields() {
  $("guidance-slider").addEventListener("input", () => ($("guidance").value = $("guidance-slider").value));
  $("guidance").addEventListener("input", () => {
    $("guidance-slider").value = $("guidance").value;
    guidanceNote();
  });
  $("guidance-slider").addEventListener("input", guidanceNote);
  $("formula_below_one").addEventListener("change", guidanceNote);
}

export function applyDefaults(defaults) {
  $("steps").value = defaults.steps;
  $("guidance").value = defaults.guidance;
  $("guidance-slider").value = defaults.guidance;
  setScheduler(defaults.scheduler, Boolean(defaults.karras));
  guidanceNote();
}

/** Choose a scheduler (any capitalisation of its id) and, where given, the Karras setting. */
export function setScheduler(id, karras = null) {
  $("scheduler").value = schedulerId(id);
  if (karras !== null) $("karras").checked = karras;
  syncKarras();
}

/** The Karras box applies only where the scheduler has Karras sigmas (as in diffusers). */
export function syncKarras() {
  const box = $("karras");
  box.disabled = !supportsKarras($("scheduler").value);
  box.closest("label").title = box.disabled
    ? `${schedulerName($("scheduler").value)} has no Karras sigmas`
    : "Karras sigmas (ρ = 7): more of the steps at low noise";
  // The reason a control is greyed out is written beside it, not only in a tooltip.
  $("karras-reason").textContent = box.disabled ? `(greyed out: ${schedulerName($("scheduler").value)} has no Karras sigmas)` : "";
}

/** The final decoder's menu for the loaded model (final_decoder.js decoderChoice): its default, or
 * greyed out with the reason beside it where the model has no full-size fast decoder. */
export function setDecoderChoice({ available, value, reason }) {
  const menu = $("decoder");
  menu.disabled = !available;
  menu.value = available ? value : "vae";
  $("decoder-reason").textContent = available ? "" : `(greyed out: ${reason})`;
}

/** The guidance box's word as it is typed: an error for a value no run takes, advice for two ranges. */
export function guidanceNote() {
  const el = $("guidance-message");
  const { text, kind } = guidanceAdvice($("guidance").value, $("formula_below_one").checked);
  el.textContent = text;
  el.className = `field-message ${kind}`.trim();
}

// ---------------------------------------------------------------------------------------------
// Validation next to each field

const FIELDS = ["prompt", "seed", "steps", "guidance", "scheduler", "karras", "decoder", "strength", "init_image"];

export function clearFieldMessages() {
  for (const field of FIELDS) {
    const el = $(`${field}-message`);
    el.textContent = "";
    el.className = "field-message";
  }
}

/**
 * A field's error goes as soon as its value is fixed, not at the next Generate: after each edit
 * while an error shows, the worker's `check(settings)` (plain Python, no model run) says which
 * field is still wrong, and every other error is cleared; `onFixed()` clears what else showed it
 * (the box by the form) once none is left.
 */
export function clearMessagesWhenFixed(check, onFixed) {
  // Only the fields the check reads (readForm's): a picture's message (picture/) is its own.
  const checked = FIELDS.filter((f) => !["init_image", "strength"].includes(f));
  const errors = () => checked.map((f) => $(`${f}-message`)).filter((el) => el.classList.contains("error") && el.textContent);
  $("controls").addEventListener("input", async (event) => {
    if (!checked.includes(event.target.id.replace(/-slider$/, "")) || !errors().length) return; // (guidance's slider too)
    const answer = await check(readForm()).catch(() => null);
    if (!answer) return;
    for (const el of errors()) {
      if (answer.ok || el.id !== `${answer.field}-message`) {
        el.textContent = "";
        el.className = "field-message";
      }
    }
    if (answer.ok) onFixed();
  });
}

export function fieldMessage(field, text, warning = false) {
  // (a field with no message line of its own, such as a setting only the API sets, uses the prompt's)
  const el = (field && $(`${field}-message`)) || $("prompt-message");
  el.textContent = text;
  el.className = warning ? "field-message warning" : "field-message error";
}

export function readForm() {
  return {
    prompt: $("prompt").value,
    negative: $("negative").value,
    seed: $("seed").value.trim(),
    steps: $("steps").value.trim(),
    guidance: $("guidance").value.trim(),
    scheduler: $("scheduler").value,
    karras: $("karras").checked && !$("karras").disabled,
    formula_below_one: $("formula_below_one").checked ? "1" : "",
    decoder: $("decoder").disabled ? "vae" : $("decoder").value,
    model: $("model").value,
  };
}

/** Show the settings a run uses in the form, whoever started it (a click, a link or the API). */
export function writeForm(settings) {
  for (const key of ["prompt", "negative", "seed", "steps", "guidance"]) {
    if (settings[key] !== undefined && !(key === "guidance" && settings[key] === "nan")) $(key).value = settings[key];
  }
  if (settings.scheduler !== undefined) setScheduler(settings.scheduler, karrasValue(settings.karras));
  if (settings.formula_below_one !== undefined) $("formula_below_one").checked = isOn(settings.formula_below_one);
  if (settings.decoder !== undefined && !$("decoder").disabled) $("decoder").value = decoderValue(settings.decoder);
  $("guidance-slider").value = $("guidance").value;
  for (const follower of followers) follower(settings);
  guidanceNote();
}
