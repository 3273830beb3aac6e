// What this browser has measured: the last run's time per part, for each model on each backend,
// variant and thread count. The estimate before Generate (estimate.js), the "of about N s" while a
// long part runs (progress.js) and the time on "Redraw with the full VAE" (stage/final_decoder.js)
// come from here, so that they describe this machine, not the reference one. Kept in
// localStorage: a few numbers per model, and nothing when the browser keeps nothing.

const STORAGE_KEY = "sdlens.measured.v1";

/** Where the numbers live: localStorage when the page may use it, else a map for this visit only. */
const memory = new Map();
function storage() {
  try {
    const store = globalThis.localStorage;
    if (store) return store;
  } catch {
    // (a sandboxed frame, or storage switched off: the getter itself throws)
  }
  return { getItem: (k) => memory.get(k) ?? null, setItem: (k, v) => memory.set(k, String(v)) };
}

function readAll() {
  try {
    return JSON.parse(storage().getItem(STORAGE_KEY) || "{}") || {};
  } catch {
    return {}; // unreadable (an older format, or edited by hand): measure again
  }
}

function writeAll(all) {
  try {
    storage().setItem(STORAGE_KEY, JSON.stringify(all));
  } catch {
    // full or refused: the numbers are a convenience, the run itself is done
  }
}

/** One entry per model, backend (a software WebGPU adapter is its own), variants (each graph's, where
 * they differ: backend.js componentVariants) and thread count. */
export function measuredKey(model, backend) {
  const ep = backend.ep === "webgpu" && String(backend.label || "").endsWith("(software)") ? "webgpu-software" : backend.ep;
  const each = [...new Set(Object.values(backend.variants || {}))];
  const variants = each.length > 1 ? Object.values(backend.variants).join("/") : backend.variant;
  return [model, ep, variants, backend.ep === "wasm" ? `${backend.threads || 1}t` : ""].join("|");
}

/** A run with classifier-free guidance sends a batch of two through each UNet call. */
export const guidedBatch = (settings) => {
  const g = Number(settings.guidance);
  const formula = [true, "1", "true", "on"].includes(settings.formula_below_one);
  return g > 1 || (formula && g !== 1) ? 2 : 1;
};

const sum = (values) => values.reduce((a, b) => a + b, 0);

/**
 * Keep a finished run's times: text encoder, one UNet call (with the waiting and reading back that
 * follows it), each step's picture, the picture encoder and the decoder that drew the picture.
 * `settings` are the run's request (init_image: a run from a picture).
 */
export function rememberRun(model, backend, settings, timings) {
  const calls = timings.step_ms?.length || 0;
  const all = readAll();
  const key = measuredKey(model, backend);
  const entry = { decode: {}, ...all[key] };
  if (!timings.text_reused) entry.text_ms = timings.text_ms; // (kept embeddings take no time: not a measurement)
  if (calls) {
    entry.unet_call_ms = (sum(timings.step_ms) + (timings.report_ms || 0)) / calls;
    entry.unet_batch = guidedBatch(settings);
    // each step's picture while the run goes (a first visit's run draws them after: 0, not kept; with
    // the fast final decoder the last one is drawn after the picture)
    const drawn = calls - (timings.decoder === "fast" ? 1 : 0);
    if (timings.preview_ms > 0 && drawn > 0) entry.preview_ms_per_step = timings.preview_ms / drawn;
  }
  if (settings.init_image && timings.encode_ms > 0) entry.encode_ms = timings.encode_ms; // (from noise: the noise's ms)
  if (timings.decoder && timings.decode_ms > 0) entry.decode = { ...entry.decode, [timings.decoder]: timings.decode_ms };
  all[key] = entry;
  writeAll(all);
}

/** Keep one decode's time ("vae" or "fast"), as a redraw measures it. */
export function rememberDecode(model, backend, decoder, ms) {
  const all = readAll();
  const key = measuredKey(model, backend);
  all[key] = { ...all[key], decode: { ...all[key]?.decode, [decoder]: ms } };
  writeAll(all);
}

/** What this browser measured for `model` on `backend`, or null: {text_ms, unet_call_ms,
 * unet_batch, preview_ms_per_step?, encode_ms?, decode: {vae?, fast?}}. */
export function measured(model, backend) {
  if (!model || !backend) return null;
  return readAll()[measuredKey(model, backend)] || null;
}

/** "40 ms", "4.2 s" or "38 s": a measured time, as rounded as a measurement of one run deserves. */
export const roughSeconds = (ms) =>
  (ms >= 10_000 ? `${Math.round(ms / 1000)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);
