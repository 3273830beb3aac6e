// Shareable links: the query string carries a run's settings (and what it was compared with), so
// a link reproduces the exact run on another machine: same seed, same noise, same pictures.
// Other query parameters (such as ?backend=) are left as they are.

import { karrasValue, schedulerId } from "../schedulers.js";
import { decoderValue } from "../decoders.js";
import { getCompare, runComparison, setCompare } from "./compare.js";

const FORM_KEYS = ["prompt", "negative", "seed", "steps", "guidance", "scheduler", "karras", "formula_below_one", "decoder", "model"];
const COMPARE_KEY = "compare"; // the second value (prompt, scheduler or step count)
const MODE_KEY = "compare_mode"; // prompt | scheduler | steps
// The page's own parameters (app.js reads them), which a link keeps but does not run.
const PAGE_KEYS = ["backend", "threads", "variant"];
const $ = (id) => document.getElementById(id);

let linkRun = null; // the automatic run a link asks for: started once per page

/**
 * The settings a URL carries: {settings: {…}, compare: {mode, value} | null, ignored: [names]}.
 * Unlike window.sdlens.generate, a link may carry parameters that are not ours (other sites add
 * tracking tags such as utm_source): it runs what it understands and names the rest in `ignored`.
 */
export function readLink(search = location.search) {
  const params = new URLSearchParams(search);
  const settings = {};
  for (const key of FORM_KEYS) if (params.has(key)) settings[key] = params.get(key);
  const value = params.get(COMPARE_KEY);
  const compare = value !== null && value !== "" ? { mode: params.get(MODE_KEY) || "prompt", value } : null;
  const known = new Set([...FORM_KEYS, COMPARE_KEY, MODE_KEY, ...PAGE_KEYS]);
  const ignored = [...new Set(params.keys())].filter((key) => !known.has(key));
  return { settings, compare, ignored };
}

/** One line at the top of the controls naming the link's parameters that were not used (none: no line). */
function showIgnored(ignored) {
  if (!ignored.length) return;
  const note = document.createElement("p");
  note.id = "link-ignored";
  note.className = "note";
  note.textContent = `This link's ${ignored.length === 1 ? "parameter" : "parameters"} ${ignored.join(", ")} ` +
    `${ignored.length === 1 ? "is" : "are"} not sdlens settings and ${ignored.length === 1 ? "was" : "were"} ignored.`;
  const controls = $("controls");
  if (controls) controls.prepend(note); // inside the form: a sibling would take a cell of the page's grid
  else document.body.prepend(note);
}

/** The page URL for a run's settings, keeping every parameter that is not ours. */
export function linkFor(settings, compare, href = location.href) {
  const url = new URL(href);
  for (const key of [...FORM_KEYS, COMPARE_KEY, MODE_KEY]) url.searchParams.delete(key);
  for (const key of FORM_KEYS) {
    const value = settings[key];
    if (key === "karras" && !karrasValue(value)) continue; // only "karras=true" is worth a parameter
    if (key === "decoder" && decoderValue(value) === "vae") continue; // the VAE: what a link without one runs
    if (value !== undefined && value !== null && value !== "" && value !== false && !(key === "guidance" && value === "nan")) {
      url.searchParams.set(key, String(value));
    }
  }
  if (compare && compare.value !== "") {
    url.searchParams.set(COMPARE_KEY, compare.value);
    url.searchParams.set(MODE_KEY, compare.mode);
  }
  return url.href;
}

function fillForm(settings) {
  for (const [key, value] of Object.entries(settings)) {
    const field = $(key);
    if (!field || key === "model") continue; // (the menu follows the open model: app.js opens the link's)
    if (key === "karras") field.checked = Boolean(karrasValue(value));
    else if (key === "scheduler") field.value = schedulerId(value); // "DDIM" and "ddim" are the same link
    else if (key === "decoder") field.value = decoderValue(value); // ("taesd" is the fast decoder too)
    else if (field.type === "checkbox") field.checked = ["1", "true", "on"].includes(String(value).toLowerCase());
    else field.value = value;
    field.dispatchEvent(new Event("input", { bubbles: true })); // views that follow the form update
    if (key === "scheduler") field.dispatchEvent(new Event("change", { bubbles: true })); // the Karras box follows
  }
}

/**
 * Fill the form from the URL, and when the URL names a prompt, run it (and its comparison) once
 * the model is ready. The link's model is loaded first and the form filled again after it, because
 * loading a model resets the steps, guidance and scheduler to that model's defaults: the settings a
 * link leaves out are its model's. Resolves when the run is done.
 */
export function applyLinkSettings() {
  if (linkRun) return linkRun;
  const { settings, compare, ignored } = readLink();
  // A link reproduces its run: one without a decoder was drawn by the VAE, whatever this browser's
  // default (a slow backend's is the fast decoder).
  if (settings.prompt && !("decoder" in settings)) settings.decoder = "vae";
  showIgnored(ignored);
  fillForm(settings);
  if (compare) setCompare(compare.mode, compare.value);
  linkRun = (async () => {
    await window.sdlens.ready;
    try {
      // The link's model first, so that what the link leaves out is that model's defaults. The
      // page opened it already (app.js); where it could not, it said why, and the link's run is
      // not made on another model.
      if (settings.model && !window.sdlens.isOpen(settings.model)) return null;
      fillForm(settings);
      if (!settings.prompt) return null;
      if (compare) return await runComparison({ ...formSettings(settings) }, compare.mode, compare.value);
      // Like a first visit's run, the link's (every reload's) shows its image first, then decodes
      // each step's picture: on the default model they are 1.7 s of a 3.5 s run.
      return await window.sdlens.explain(formSettings(settings), "main", { picturesLater: true });
    } catch (err) {
      console.warn(`the link's run failed: ${err.message}`); // app.js shows the message by the form
      return null;
    }
  })();
  return linkRun;
}

/** The link's settings over the form's (the form holds the model's defaults for the rest). */
function formSettings(settings) {
  const form = {};
  for (const key of FORM_KEYS) {
    if (!$(key)) continue;
    if (key === "karras") form[key] = $(key).checked && !$(key).disabled;
    else form[key] = $(key).type === "checkbox" ? ($(key).checked ? "1" : "") : $(key).value;
  }
  const merged = { ...form, ...settings };
  if ("karras" in merged) merged.karras = karrasValue(merged.karras);
  return merged;
}

/** Keep the address bar pointing at the current run, and offer a button that copies it. */
export function mountLinks(store) {
  if (mountLinks.mounted) return;
  mountLinks.mounted = true;
  const update = ({ detail }) => {
    const main = store.main;
    if (!main || !main.final || (detail.key !== "main" && detail.key !== "compare")) return;
    const other = store.runs.get("compare");
    // A run with edited code is never passed off as a standard comparison in a link.
    const compare = other?.final && !other.modifiedCode?.length && isOneChange(main, other) ? getCompare() : null;
    // A link cannot carry the picture a run started from: rather than a link that would run
    // something else (text-to-image with the same prompt), no link, and a line that says why.
    const fromPicture = Boolean(main.settings.init_image);
    history.replaceState(history.state, "", fromPicture ? linkFor({}, null) : linkFor(main.settings, compare));
    copy.disabled = fromPicture;
    noLink.hidden = !fromPicture;
    field.hidden ||= fromPicture;
  };
  const host = $("save-controls") || $("controls");
  const copy = document.createElement("button");
  copy.type = "button";
  copy.id = "copy-link";
  copy.textContent = "Copy link";
  copy.title = "Copy a link that reproduces this run";
  const field = document.createElement("input");
  field.type = "text";
  field.readOnly = true;
  field.id = "link-text";
  field.setAttribute("aria-label", "link to this run");
  field.hidden = true;
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(location.href);
      copy.textContent = "Link copied";
      setTimeout(() => (copy.textContent = "Copy link"), 2000);
    } catch {
      // No clipboard (permission, or not a secure context): show the link to copy by hand.
      field.value = location.href;
      field.hidden = false;
      field.select();
    }
  });
  const noLink = document.createElement("span");
  noLink.id = "link-note";
  noLink.className = "note";
  noLink.hidden = true;
  noLink.textContent = "No link for this run: it started from a picture, and a link cannot carry the picture. Save image keeps the result.";
  host.append(copy, field, noLink);
  store.addEventListener("finish", update);
}

/** A compare run belongs in the link only while it is A with the compared setting changed. */
function isOneChange(main, other) {
  const text = (v) => (v === undefined || v === null || v === false ? "" : v === true ? "1" : String(v));
  const differ = FORM_KEYS.filter((k) => text(main.settings[k]) !== text(other.settings[k]));
  return differ.filter((k) => k !== "karras" || !differ.includes("scheduler")).length <= 1; // "DPM++ 2M Karras" is one choice
}
