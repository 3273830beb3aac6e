// Where a run's time went: every part of the wall-clock time from pressing Generate to the picture,
// so that the parts add up to the total. The worker measures its own stages (text encoder, the
// picture's encoder, steps, reading each step back, decode); the page measures the rest around its calls.

const seconds = (ms) => (ms >= 10_000 ? `${(ms / 1000).toFixed(0)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);
const PREVIEW_BY = { vae: ", by the VAE", preview_decoder: ", by the preview decoder", linear: ", by a linear map" };
const sum = (values) => values.reduce((a, b) => a + b, 0);

/**
 * The parts of one run, in the order they happen: [{key, label, ms, text}], adding up to
 * `marks.finished - marks.started`. `marks` are the page's performance.now() readings: started,
 * loaded (model ready), asked (generate sent to the worker), answered, finished (shown).
 * `fromPicture`: the run started from a picture (its encoder's time is a part of its own).
 */
export function timingParts(timings, marks, ep = "wasm", fromPicture = false) {
  const steps = timings.step_ms || [];
  const parts = [
    ["load", "loading the model", marks.loaded - marks.started],
    ["prepare", "checking settings and tokens", marks.asked - marks.loaded],
    // (the same words as an earlier run, or encoded while the prompt was typed: Pipeline.encode_text)
    ["text", timings.text_reused ? "text encoder (not run: this prompt's embeddings were already made)" : "text encoder", timings.text_ms || 0],
    // a run from a picture: the picture through the VAE encoder, before the steps (from noise,
    // encode_ms is the starting noise's few ms: "the rest" says so)
    ["encode", "VAE encoder (your picture)", fromPicture ? timings.encode_ms || 0 : 0],
    ["steps", `${steps.length} denoising step${steps.length === 1 ? "" : "s"}`, sum(steps)],
    // On WebGPU a step only queues the GPU's work; reading its results back waits for the GPU
    // (measured on software WebGPU: 5 steps queued in 0.5 s, then 15 s of waiting and reading).
    ["report", ep === "webgpu" ? "waiting for the GPU to finish each step, and reading it back" :
      "reading each step's numbers back for the page", timings.report_ms || 0],
    ["previews", `decoding each step's picture (x̂₀${PREVIEW_BY[timings.preview_kind] || ""})`, timings.preview_ms || 0],
    // the final picture, by the decoder that drew it (the fast decoder, TAESD, where the run asked for it)
    ["decode", timings.decoder === "fast" ? "fast decoder (TAESD) for the final picture" : "VAE decoder", timings.decode_ms || 0],
  ];
  const wall = marks.finished - marks.started;
  const known = sum(parts.map((p) => p[2]));
  // What no stage measured: the starting noise and the scheduler's set-up, the messages between
  // the page and the worker, and drawing the result.
  parts.push(["other", "the rest (noise, messages, drawing)", wall - known]);
  // (text-to-image runs encode nothing; a run whose step pictures were all drawn after it, a first
  // visit's or a one-step run by the fast decoder, decoded none during it)
  return parts.filter(([key, , ms]) => (key !== "encode" || fromPicture) && (key !== "previews" || ms > 0))
    .map(([key, label, ms]) => ({ key, label, ms, text: seconds(ms) }));
}

/** The progress line once a run is done: the total and the steps (with their mean where a step's
 * time is its computing time: not on WebGPU, where it is only the time to queue the work). */
export function timingSummary(timings, ep = "wasm", stepCount = null) {
  const calls = timings.step_ms || []; // one entry per UNet call (Heun and PNDM make more than one in a step)
  const mean = calls.length ? sum(calls) / calls.length : 0;
  const count = stepCount ?? calls.length;
  const several = calls.length !== count;
  const n = `${count} step${count === 1 ? "" : "s"}${several ? ` (${calls.length} UNet calls)` : ""}`;
  const each = several ? "per UNet call" : "each";
  return `Done in ${seconds(timings.wall_ms)}: ${ep === "webgpu" ? n : `${n} at ${seconds(mean)} ${each}`}. Where the time went:`;
}
