// The detail panel's short view: what a class needs at a glance, with every number one click away.
//   - one picture per tensor of the step, made by the decoder the step strip uses (decoded.js);
//   - a few rows of the scheduler's table;
//   - "all numbers": a fold holding every channel and coefficient (detail.js fills it).

import { drawRgba, figure } from "./colormaps.js";
import { DECODERS, decodeTensor } from "./decoded.js";

/** The tensors of a refiner step, in the order they are made, with what each is. */
function tensorsOf(guided) {
  return [
    ["latent", "x_t: the noisy latent"],
    ...(guided ? [["eps_uncond", "ε_uncond: noise, no prompt"]] : []),
    ["eps_cond", guided ? "ε_cond: noise, your prompt" : "ε: noise, your prompt"],
    ...(guided ? [["eps_guided", "ε: the guided noise"]] : []),
    ["x0", "x̂₀: the model's guess"],
  ];
}

/** A row of pictures, one per tensor; the caption says which decoder drew it. */
export function tensorPictures(run, step, guided) {
  const row = document.createElement("div");
  row.className = "row-pics tensor-pictures";
  const shown = [];
  const note = document.createElement("p");
  note.className = "note pictures-note";
  for (const [name, what] of tensorsOf(guided)) {
    const { fig, canvas, cap } = figure(what, "tensor");
    fig.dataset.tensor = name;
    const by = document.createElement("span");
    by.className = "by";
    by.textContent = "decoding…";
    cap.append(document.createElement("br"), by);
    row.append(fig);
    const entry = { name, by: null };
    shown.push(entry);
    decodeTensor(run, step, name).then((picture) => {
      drawRgba(canvas, picture);
      entry.by = picture.by;
      by.textContent = `by ${DECODERS[picture.by] || picture.by}`;
      note.textContent = `Each picture is that tensor put through ${DECODERS[picture.by] || picture.by}, the decoder the step strip uses` +
        (guided || name.startsWith("eps") ? "; the noise predictions ε are not images, so theirs show the noise's pattern, decoded as if it were a latent." : ".");
    }, () => (by.textContent = "could not be decoded"));
  }
  row.shown = shown;
  const wrap = document.createElement("div");
  wrap.className = "tensor-pictures-wrap";
  wrap.append(row, note);
  wrap.shown = shown;
  return wrap;
}

// The rows a class reads first: where the step is, and how far it goes.
const FIRST_ROWS = ["timestep", "prev_timestep", "sigma", "sigma_next", "sigma_prev", "alpha_prod_t", "alpha_prod_t_prev"];

/** A timestep is a whole number; a step that goes past the last timestep goes to "the end". */
export function timeValue(name, value, fmt) {
  if ((name === "prev_timestep" || name === "timestep") && value < 0) return "the end (t = 0, clean)";
  return fmt(value);
}

/** Up to four rows of the scheduler's table: the step's timestep and noise level, before and after. */
export function fewRows(coefficients, label, fmt) {
  const names = FIRST_ROWS.filter((n) => n in coefficients).slice(0, 4);
  const table = document.createElement("table");
  table.className = "few-rows";
  for (const name of names.length ? names : Object.keys(coefficients).slice(0, 4)) {
    const [symbol, meaning] = label(name);
    const tr = table.insertRow();
    tr.dataset.name = name;
    tr.insertCell().textContent = symbol;
    tr.insertCell().textContent = timeValue(name, coefficients[name], fmt);
    tr.insertCell().textContent = meaning;
  }
  return table;
}

/** The fold for every channel and coefficient: {details, body}. */
export function allNumbers(what = "every channel, the whole update and each coefficient") {
  const details = document.createElement("details");
  details.className = "all-numbers";
  const summary = document.createElement("summary");
  summary.textContent = `All numbers: ${what}`;
  const body = document.createElement("div");
  details.append(summary, body);
  return { details, body };
}
