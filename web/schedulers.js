// The schedulers as the page names them. Their names and one-sentence descriptions come from
// the Python classes (py/sdlens/schedulers: each class's `label` and `summary`), which the worker
// sends once Python is up; this module only keeps that list and answers questions about it.

let catalogue = { schedulers: [], karras_summary: "" };

/** Keep the worker's list: {schedulers: [{id, label, summary, karras}], karras_summary}. */
export function setCatalogue(value) {
  catalogue = value;
}

export const schedulers = () => catalogue.schedulers;
export const karrasSummary = () => catalogue.karras_summary;

/** The entry for an id in any capitalisation ("DDIM", " Euler_A "), or undefined. */
export function schedulerEntry(id) {
  const key = String(id ?? "").trim().toLowerCase();
  return catalogue.schedulers.find((s) => s.id === key);
}

/** The canonical id for a value a link or a script gave ("DDIM" → "ddim"); unknown ids unchanged. */
export const schedulerId = (id) => schedulerEntry(id)?.id ?? id;

export const supportsKarras = (id) => Boolean(schedulerEntry(id)?.karras);

/** A true/false Karras setting from a link or a script ("true", "1", true); null when not given. */
export function karrasValue(value) {
  if (value === undefined || value === null || value === "") return null;
  if (typeof value === "boolean") return value;
  return ["1", "true", "yes", "on"].includes(String(value).trim().toLowerCase());
}

/** What users call it: "DPM++ 2M Karras", "UniPC", "Euler a". */
export function schedulerName(id, karras = false) {
  const entry = schedulerEntry(id);
  if (!entry) return String(id);
  return karrasValue(karras) && entry.karras ? `${entry.label} Karras` : entry.label;
}

/** Fill a <select> with every scheduler (with `karrasVariants`, also "… Karras" entries whose
 * value is "id karras"), keeping its current choice where it still exists. */
export function fillSchedulerSelect(select, { karrasVariants = false } = {}) {
  const current = select.value;
  const options = [];
  for (const s of catalogue.schedulers) {
    options.push(new Option(s.label, s.id));
    if (karrasVariants && s.karras) options.push(new Option(`${s.label} Karras`, `${s.id} karras`));
  }
  select.replaceChildren(...options);
  if (current) select.value = current;
}

/** "dpmpp_2m karras" (a Compare choice) → {scheduler: "dpmpp_2m", karras: true}. */
export function parseSchedulerChoice(value) {
  const [id, flag] = String(value).trim().split(/\s+/);
  return { scheduler: schedulerId(id), karras: flag === "karras" };
}
