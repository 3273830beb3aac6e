// The progress line: what the page is doing now. During a run the long parts (the text encoder, a
// picture through the VAE encoder, each UNet call, the final decode: at full size on WASM a UNet
// call is ~11 s, the VAE's decode ~30 s) are named as they begin, with the seconds ticking, and
// "of about N s" where this browser has timed that part before (measured.js), so that a long wait
// never looks frozen.

import { decoderKey } from "./decoders.js";
import { roughSeconds } from "./measured.js";

const $ = (id) => document.getElementById(id);
const TICK_MS = 500;
let ticking = null;

/** The line and its bar (`fraction` null: a part whose length is not known). Ends a ticking phase. */
export function setProgress(text, fraction) {
  endPhase();
  show(text, fraction);
}

function show(text, fraction) {
  $("progress-text").textContent = text;
  const bar = $("progress-bar");
  if (fraction === null || fraction === undefined) bar.removeAttribute("value");
  else bar.value = fraction;
}

/** Stop the seconds of the phase being shown (the next event, or the run's end, says what follows). */
export function endPhase() {
  clearInterval(ticking);
  ticking = null;
}

// `where`: a UNet call's {step, steps, call, calls, batch} (the worker's phase event)
const PHASES = {
  text: () => "Encoding the prompt (text encoder)…",
  encode: () => "Encoding your picture (VAE encoder)…",
  unet: (label, { step = 0, steps = 1, call = 0, calls = 1, batch = 1 }) =>
    `Step ${step + 1} of ${steps}${calls > 1 ? `, UNet call ${call + 1} of ${calls}` : ""}: ` +
    `the UNet predicts the noise${batch > 1 ? ", with and without the prompt" : ""}…`,
  decode: (label) => `Drawing the final picture with ${label}…`,
};

/** The time this browser last measured for a phase, or undefined (`own`: measured()'s entry). */
export function expectedMs(phase, decoderLabel, own, where = {}) {
  if (!own) return undefined;
  if (phase === "text") return own.text_ms;
  if (phase === "encode") return own.encode_ms;
  // (a batch of two, with guidance, takes about twice a batch of one)
  if (phase === "unet") return own.unet_call_ms && (own.unet_call_ms * (where.batch || 1)) / (own.unet_batch || 1);
  if (phase === "decode") return own.decode?.[decoderKey(decoderLabel)];
  return undefined;
}

/** The words for a phase `elapsedMs` after it began. */
export function phaseText(phase, decoderLabel, elapsedMs, expected, where = {}) {
  const what = (PHASES[phase] || (() => `${phase}…`))(decoderLabel, where);
  const of = expected > 0 ? ` of about ${roughSeconds(expected)}` : "";
  return `${what} ${(Math.max(0, elapsedMs) / 1000).toFixed(1)} s${of}`;
}

/**
 * A worker's "phase" event ({phase, decoder, at}: `at` on the worker's clock, comparable with
 * performance.timeOrigin + now here): say what runs, and tick its seconds until the next event.
 * `who` prefixes a side run ("Run B: "); `own` is this browser's measurements for the model.
 */
export function showPhase(event, { who = "", own = null } = {}) {
  endPhase();
  const expected = expectedMs(event.phase, event.decoder, own, event);
  const started = Number.isFinite(event.at) ? event.at : performance.timeOrigin + performance.now();
  // (the bar: how far the steps are, where this is one; otherwise a part of unknown length)
  const fraction = event.phase === "unet" ? (event.step + event.call / event.calls) / event.steps : null;
  const draw = () => show(`${who}${phaseText(event.phase, event.decoder, performance.timeOrigin + performance.now() - started, expected, event)}`, fraction);
  draw();
  ticking = setInterval(draw, TICK_MS);
}

// Decimal units, as the README and the manifests' byte counts are quoted (1 MB = 1,000,000 bytes).
export const formatBytes = (n) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(0)} kB`);

/** A worker's "download" event on the progress line. */
export const showDownload = (event) => setProgress(downloadText(event), event.totalReceived / event.total);

/** A "download" event in words: the model's files, or the VAE encoder's (fetched when a run first
 * starts from a picture, or the forward-process view first encodes one). */
export function downloadText(event) {
  // A reload or a broken download left verified files in the cache: say that it resumes there.
  const resumed = event.resumed ? `Resuming an unfinished download (${event.resumed} files already here). ` : "";
  const file = event.file ? `; ${event.file} ${formatBytes(event.received)} of ${formatBytes(event.size)}` : "";
  const where = event.totalReceived >= event.total ? " (from the browser's cache)" : "";
  const what = event.component === "vae_encoder" ? "VAE encoder files" : "Model files";
  return `${resumed}${what}: ${formatBytes(event.totalReceived)} of ${formatBytes(event.total)}${file}${where}`;
}
