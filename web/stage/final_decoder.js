// Which decoder draws the finished picture (decoders.js): the model's own VAE (exact, and on WASM at
// full size most of the wait) or the fast decoder, TAESD (much quicker, close). Here: the setting's
// default for a model and backend, what the views say about it, and "Redraw with the full VAE",
// which draws the same final latent again with the VAE (no new denoising) and makes that the
// run's picture.

import { decoderOf } from "../decoders.js";
import { isFullSize, isSlow } from "../estimate.js";
import { measured, rememberDecode, roughSeconds } from "../measured.js";
import { setProgress } from "../progress.js";

const $ = (id) => document.getElementById(id);

/**
 * The decoder menu for a model on a backend: {available, value, reason}. The fast decoder exists
 * where the model ships a TAESD that draws full-size pictures (`fastFinal`, from the worker). It is
 * the default only where the VAE's decode is the long wait: a full-size model on a slow backend.
 */
export function decoderChoice(manifest, backend, fastFinal) {
  if (!fastFinal) {
    const reason = manifest?.components?.preview_decoder
      ? `${manifest.name}'s TAESD only draws small step pictures (export it again with --preview-decoder)`
      : `${manifest?.name || "this model"} has no fast decoder (TAESD)`;
    return { available: false, value: "vae", reason };
  }
  const slowFullSize = isSlow(backend) && isFullSize(manifest, backend);
  return { available: true, value: slowFullSize ? "fast" : "vae", reason: "" };
}

/** The line under the step strip: which decoder draws each step's picture, and the final one. */
export function previewsNote(preview, manifest) {
  if (preview.kind === "linear") return `Each step: the model's guess of the finished image, drawn with ${preview.label}.`;
  const smaller = preview.width < manifest.defaults.width;
  return `Each step: the model's guess of the finished image (x̂₀), decoded by ${preview.label}` + (smaller
    ? ` at ${preview.width}×${preview.height} (a quick preview; the final image is the VAE's, unless you chose the fast decoder).` : ".");
}

/** The Upscaler panel's words for how the final latent became the picture. */
export function upscalerText(run, shapes) {
  const factor = run.manifest.vae_scaling_factor;
  const f = run.manifest.vae_scale_factor;
  if (decoderOf(run) === "fast") {
    return `The refiner's last latent (${shapes.latent}) went to the fast decoder (TAESD), a small network trained ` +
      `to imitate the VAE's decoder: it drew this image (${shapes.image}) in a fraction of the VAE's time, close to ` +
      `the VAE's picture but not the same. Each latent cell becomes ${f}×${f} pixels. The VAE's own picture is one ` +
      `click away: “Redraw with the full VAE” under the image decodes the same latent again (no new steps).`;
  }
  const redrawn = run.redrawn ? " (redrawn from the run's final latent, after the fast decoder's picture)" : "";
  return `The refiner's last latent (${shapes.latent}) is divided by the VAE's scaling factor ${factor.toFixed(3)} ` +
    `(that is, multiplied by ${(1 / factor).toFixed(3)}) and decoded by the VAE into the image (${shapes.image})${redrawn}: each ` +
    `latent cell becomes ${f}×${f} pixels.`;
}

/** How long the VAE takes here, in words for the redraw button (only a measured time is given). */
function vaeTime(run) {
  const ms = measured(run.settings.model, run.backend)?.decode?.vae;
  return ms === undefined ? "time not yet measured on this browser" : `about ${roughSeconds(ms)}`;
}

/**
 * The redraw button under the picture, shown while the main run's picture is the fast decoder's.
 * `call` is the worker's; `busy(on)` greys Generate; `running()` says whether a run is going;
 * `onRedrawn(text)` adds the redraw to the page's time line. Returns {redraw, update}.
 */
export function mountFinalDecoder({ store, call, busy, running, onRedrawn }) {
  const row = $("final-decoder");
  const button = $("redraw-vae");
  let redrawing = false;

  function update() {
    const run = store.main;
    const offer = Boolean(run?.final && run.latents && decoderOf(run) === "fast");
    row.hidden = !offer;
    if (!offer || redrawing) return;
    button.textContent = `Redraw with the full VAE (${vaeTime(run)})`;
    button.disabled = running();
  }

  /** Draw the main run's final latent with the VAE and make it the run's picture: {width, height, rgba, decoder}. */
  async function redraw() {
    const run = store.main;
    if (!run?.final || !run.latents) throw new Error("there is no finished run to redraw; generate first");
    if (running() || redrawing) throw new Error("a run is in progress; redraw when it is done");
    redrawing = true;
    busy(true);
    $("stop").disabled = true; // a redraw is one decode: nothing to stop
    button.disabled = true;
    button.textContent = "Redrawing with the full VAE…";
    try {
      const picture = await call("redraw", { latent: run.latents, shape: run.latentShape, decoder: "vae" });
      rememberDecode(run.settings.model, run.backend, "vae", picture.ms);
      const { width, height, rgba } = picture;
      // The run now shows the VAE's picture: a link to it runs the VAE, and every label says so.
      Object.assign(run, { final: { width, height, rgba }, decoder: "vae", decoderLabel: picture.label, redrawn: true,
        settings: { ...run.settings, decoder: "vae" } });
      if (store.main === run) store.select(run.steps.length - 1);
      store.emit("finish", { key: run.key });
      onRedrawn(` · then redrawn with the full VAE ${roughSeconds(picture.ms)}`);
      setProgress(`Redrawn with the full VAE in ${roughSeconds(picture.ms)} (the run's own final latent; no new steps).`, 1);
      return { width, height, rgba, decoder: "vae" };
    } finally {
      redrawing = false;
      busy(false);
      update();
    }
  }

  button.addEventListener("click", () => redraw().catch((err) => (button.textContent = `Could not redraw: ${err.message}`)));
  for (const type of ["run", "finish"]) store.addEventListener(type, ({ detail }) => detail.key === "main" && update());
  new MutationObserver(update).observe($("stop"), { attributes: true, attributeFilter: ["disabled"] }); // runs start and end
  update();
  return { redraw, update };
}
