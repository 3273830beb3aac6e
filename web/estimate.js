// How long Generate will take, said before it is pressed, where the answer is "long": a full-size
// model on a slow backend (WASM, or a software WebGPU adapter). From this browser's own last run of
// the same model, backend, variant and threads (measured.js) where there is one; else from the
// reference machine's numbers below, and then it says that it is estimated.

import { guidedBatch } from "./measured.js";

// What a run of a full-size model costs on WASM, measured on this project's reference machine
// (README, "Benchmarks": SD-Turbo-shaped, int8, 2 threads, 512², `python -m tests.bench_browser_full`
// and `python -m tests.bench components`): one UNet call on a 64×64 latent, the VAE decode of a
// 512×512 picture, and the same picture by the fast decoder (TAESD int8). Other sizes scale with
// their pixels, other thread counts inversely; the estimate is rough and says so.
const WASM_UNET_CALL_S = 14.7;
const WASM_VAE_DECODE_S = 33.8;
const WASM_FAST_DECODE_S = 2.5;
const REFERENCE_THREADS = 2;
// A UNet over this many bytes (the chosen variant's files) is a full-size model, not a classroom one
// (the default model's is under 10 MB; SD-Turbo's smallest, int8, is 865 MB).
const FULL_SIZE_UNET_BYTES = 200e6;

const unetBytes = (manifest, backend) =>
  (manifest.components?.unet?.variants?.[backend.variants?.unet || backend.variant]?.files || []).reduce((sum, f) => sum + f.bytes, 0);

/** A full-size model (SD 1.5, 2.1, Turbo), not a classroom one: by its UNet's bytes. */
export const isFullSize = (manifest, backend) => unetBytes(manifest, backend) >= FULL_SIZE_UNET_BYTES;

/** WASM, or a WebGPU adapter that is software: each full-size step takes seconds. */
export const isSlow = (backend) => backend.ep === "wasm" || String(backend.label || "").endsWith("(software)");

/** Where an estimate is worth showing: a run there takes long enough to plan for. */
export const wantsEstimate = (manifest, backend) => Boolean(manifest && backend) && isSlow(backend) && isFullSize(manifest, backend);

/** Roughly how many seconds a run with `form`'s settings takes, from the reference measurements
 * (the VAE drawing the picture). */
export function estimateSeconds(manifest, backend, form) {
  const [unet, vae] = referenceParts(manifest, backend, form);
  return unet + vae;
}

function referenceParts(manifest, backend, form) {
  const { width, height } = manifest.defaults;
  const factor = manifest.vae_scale_factor || 8;
  const pixels = width * height;
  const latentPixels = pixels / (factor * factor);
  const threads = REFERENCE_THREADS / Math.max(1, backend.threads || 1);
  const guided = Number(form.guidance) > 1 ? 2 : 1; // classifier-free guidance runs a batch of two
  const unet = Number(form.steps) * guided * WASM_UNET_CALL_S * (latentPixels / 4096) * threads;
  const size = (pixels / (512 * 512)) * threads;
  return [unet, WASM_VAE_DECODE_S * size, WASM_FAST_DECODE_S * size];
}

/**
 * The estimate for a run with `form`'s settings (steps, guidance, formula_below_one, decoder):
 * {seconds, source: "measured" | "reference", unmeasured: [parts no number covers, left out],
 * estimated: [parts of a measured estimate taken from the reference machine]}. `own` is
 * measured()'s answer for this model and backend, or null.
 */
export function estimateRun(manifest, backend, form, own) {
  const decoder = form.decoder === "fast" ? "fast" : "vae";
  const steps = Number(form.steps) || 0;
  const unmeasured = [];
  if (own?.unet_call_ms) {
    // a batch of two (guidance) costs about twice a batch of one
    const unet = steps * own.unet_call_ms * (guidedBatch(form) / (own.unet_batch || 1));
    // (with the fast final decoder the last step's picture is drawn after the final one)
    const previews = Math.max(0, steps - (decoder === "fast" ? 1 : 0)) * (own.preview_ms_per_step || 0);
    const estimated = [];
    let decode = own.decode?.[decoder];
    if (decode === undefined) {
      // from the reference machine, scaled
      estimated.push(decoder === "vae" ? "the VAE decoder's time" : "the fast decoder's time");
      decode = referenceParts(manifest, backend, form)[decoder === "vae" ? 1 : 2] * 1000;
    }
    return { seconds: ((own.text_ms || 0) + unet + previews + decode) / 1000, source: "measured", unmeasured, estimated };
  }
  const [unet, vae, fast] = referenceParts(manifest, backend, form);
  return { seconds: unet + (decoder === "vae" ? vae : fast), source: "reference", unmeasured, estimated: [] };
}

const inWords = (s) => (s < 90 ? `${Math.max(1, Math.round(s))} s` : `${Math.round(s / 60)} min`);

/** The line beside Generate: "about 15 s on this browser (from your last run)". */
export function estimateText({ seconds, source, unmeasured, estimated = [] }) {
  const plus = unmeasured.length ? `; plus ${unmeasured.join(" and ")}, not yet timed here` : "";
  const guessed = estimated.length ? `; ${estimated.join(" and ")} estimated` : "";
  return source === "measured"
    ? `about ${inWords(seconds)} on this browser (from your last run${guessed}${plus})`
    : `about ${inWords(seconds)} (estimated from a reference machine${plus}; not yet measured on this browser)`;
}

/**
 * The line beside Generate, kept up to date: after a model loads, after each run (a new
 * measurement) and as the steps, guidance or decoder change in `form`. `context()` gives {manifest, backend,
 * form, own} (own: measured()'s entry) or null. update() returns what the line says:
 * {seconds, source, unmeasured, estimated, text}, or null where no estimate is shown.
 */
export function mountEstimate(line, { form, store }, context) {
  function update() {
    const now = context();
    const shown = now && wantsEstimate(now.manifest, now.backend)
      ? estimateRun(now.manifest, now.backend, now.form, now.own) : null;
    line.textContent = shown ? `Generate takes ${estimateText(shown)}.` : "";
    line.hidden = !shown;
    return shown && { ...shown, text: line.textContent };
  }
  for (const type of ["input", "change"]) form.addEventListener(type, update);
  store.addEventListener("finish", update); // a run (or a redraw) just timed something
  return { update };
}
