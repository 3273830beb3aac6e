// The stage's picture: #image shows the selected step of the current run, so dragging the timestep
// slider (or pressing play) shows the model turning noise into a picture, as in the original
// Diffusion Explainer, but live. At the last step it shows the finished image. A switch chooses
// what a step's picture is:
//   x̂₀ — the model's guess of the finished image at that step (the step strip's picture), or
//   x_t — the noisy latent the run holds at that step, decoded by the same decoder as x̂₀
//         (window.sdlens.decode); only a run made with "Explain every step" kept it.
// What #image shows is recorded in window.sdlens.debug.displayed.stage, for the tests.

import { drawRgba } from "../explainer/colormaps.js";
import { DECODERS, decodeTensor } from "../explainer/decoded.js";
import { decoderOf } from "../decoders.js";
import { startupMarks } from "../first_visit.js";
import { mountFold } from "./fold.js";
import { mountFolds } from "./folds.js";
import { mountStrip } from "./strip.js";

const $ = (id) => document.getElementById(id);
const PLAY_MS = 100; // one step per 100 ms, as the original

/** Where the picture record goes: the explainer's `displayed`, once it is mounted. */
function record(entry) {
  const displayed = window.sdlens?.debug?.displayed;
  if (displayed) displayed.stage = entry;
  window.sdlensStage = entry; // (also before the explainer is mounted)
}

export function mountStage({ store, previewLabel, previewKind }) {
  const image = $("image");
  const caption = $("stage-caption");
  const kindInputs = [...document.querySelectorAll('input[name="stage-kind"]')];
  const reason = $("stage-kind-reason");
  let kind = "x0";
  let drawing = 0; // the latest request: an older x_t decode that returns late draws nothing
  let playAfterRun = false;

  mountStrip($("previews"), store, previewLabel, previewKind);
  const fold = mountFold($("more-settings"));
  store.addEventListener("run", () => fold.summarise()); // a run writes its settings into the form
  mountFolds(store);

  const running = () => !$("stop").disabled;
  const lastIndex = (run) => run.steps.length - 1;
  const hasLatents = (run) => Boolean(run?.steps[0]?.tensors?.latent);

  function byWhom(step) {
    return step.preview.source === "linear"
      ? `drawn with ${previewLabel() || "a linear map from the latent's channels to colours"} (an approximation, not the decoder)`
      : `decoded by ${previewLabel() || DECODERS[step.preview.source] || step.preview.source}`;
  }

  /** Who drew the finished image, in the caption's words (the fast decoder's picture is close, not the VAE's). */
  function finalBy(run) {
    if (decoderOf(run) === "fast") return "drawn by the fast decoder (TAESD): quick and close to the VAE's picture, not the same";
    return run.redrawn ? "decoded by the VAE (redrawn from the run's final latent)" : "decoded by the VAE";
  }

  function syncSwitch(run) {
    const available = hasLatents(run);
    const xt = kindInputs.find((i) => i.value === "xt");
    xt.disabled = Boolean(run) && !available;
    xt.closest("label").classList.toggle("unavailable", xt.disabled);
    reason.textContent = xt.disabled
      ? "x_t is not available: this run was made with “Explain every step” off, so it kept no noisy latents. Tick it under More settings and generate again."
      : "";
  }

  function show() {
    const run = store.main;
    const ticket = ++drawing;
    syncSwitch(run);
    if (!run || !run.steps.length) {
      if (!run) {
        image.getContext("2d").clearRect(0, 0, image.width, image.height);
        image.classList.remove("pending");
        caption.textContent = "Generate to watch the model turn noise into a picture.";
        record({ step: null, kind: null, final: false });
      } else {
        // a run just begun: its first step comes soon (at full size on WASM, ~11 s); any old picture stays, faded
        caption.textContent = "The first step is running: its picture appears here when it is done.";
      }
      return;
    }
    image.classList.remove("pending");
    const n = run.steps.length;
    const index = Math.min(store.selected, n - 1);
    const step = run.steps[index];
    const total = Number(run.settings.steps) || n;
    const where = `Step ${step.step !== undefined ? step.step + 1 : index + 1} of ${total}, t = ${Math.round(step.timestep)}`;
    if (run.final && index === lastIndex(run)) {
      drawRgba(image, run.final);
      caption.textContent = `The finished image (after step ${total} of ${total}), ${finalBy(run)}. Drag the slider or press play to watch it form.`;
      record({ step: index, kind: "final", final: true, width: run.final.width, height: run.final.height, decoder: decoderOf(run) });
      return;
    }
    const wantsLatent = kind === "xt" && hasLatents(run);
    if (wantsLatent && running()) {
      // Decoding would compete with the run in the worker: x̂₀ until it is done.
      drawRgba(image, step.preview);
      caption.textContent = `${where}: x̂₀, the model's guess of the finished image, ${byWhom(step)}. (x_t is shown once the run is done.)`;
      record({ step: index, kind: "x0", final: false, source: step.preview.source, width: step.preview.width, height: step.preview.height });
      return;
    }
    if (wantsLatent) {
      caption.textContent = `${where}: x_t, the noisy latent the model holds now, decoding…`;
      decodeTensor(run, step, "latent").then((picture) => {
        if (ticket !== drawing) return;
        drawRgba(image, picture);
        caption.textContent = `${where}: x_t, the noisy latent the model holds now, decoded by ${DECODERS[picture.by] || picture.by}.`;
        record({ step: index, kind: "xt", final: false, source: picture.by, width: picture.width, height: picture.height });
      }, (err) => {
        if (ticket === drawing) caption.textContent = `${where}: could not decode x_t (${err.message}).`;
      });
      return;
    }
    drawRgba(image, step.preview);
    caption.textContent = `${where}: x̂₀, the model's guess of the finished image, ${byWhom(step)}.`;
    record({ step: index, kind: "x0", final: false, source: step.preview.source, width: step.preview.width, height: step.preview.height });
  }

  for (const input of kindInputs) {
    input.addEventListener("change", () => {
      if (input.checked) kind = input.value;
      show();
    });
  }
  store.addEventListener("run", ({ detail }) => {
    if (detail.key !== "main") return;
    if (store.main && !store.main.final) image.classList.add("pending"); // the last picture stays, faded, until steps come
    show();
  });
  for (const type of ["step", "finish", "pictures"]) store.addEventListener(type, ({ detail }) => detail.key === "main" && show());
  store.addEventListener("select", show);

  // A run started with Generate, and a first visit's run, plays once by itself when it is done:
  // the class sees it denoise. (Runs started by code, a link or a test do not: they keep the step
  // they ask for.) A first visit's step pictures are decoded after its image: it plays once they are.
  $("controls").addEventListener("submit", () => (playAfterRun = true));
  const playIfAsked = ({ detail }) => {
    if (detail.key !== "main" || !playAfterRun || store.main?.picturesPending) return;
    playAfterRun = false;
    const play = $("tl-play");
    if (!play || store.main?.steps.length <= 1) return;
    // "soon": the finished image shows for a moment first; a hand on the slider meanwhile cancels it
    play.dataset.playing = "soon";
    setTimeout(() => {
      if (play.dataset.playing !== "soon") return;
      delete play.dataset.playing;
      play.click();
      startupMarks.played ??= performance.now(); // the first play (a first visit's run plays too)
    }, 300);
  };
  store.addEventListener("finish", playIfAsked);
  store.addEventListener("pictures", playIfAsked);
  // A stopped or failed run brings the one before back (a "run" event with a finished run): no play.
  store.addEventListener("run", ({ detail }) => detail.key === "main" && !(store.main && !store.main.final) && (playAfterRun = false));
  show();
  /** Play the next run once when it is done (a first visit's run: no Generate was pressed). */
  const playOnce = () => { playAfterRun = true; };
  return { show, playOnce, get kind() { return kind; }, PLAY_MS };
}
