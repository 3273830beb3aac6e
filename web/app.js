// The page: controls, progress, the image and the per-step strip, and `window.sdlens` for
// automation. All computing happens in the worker (runtime/worker.js); this thread only draws.

import { contextNote } from "./context_note.js";
import { decodeStepPictures, firstVisit, onPageClock, startupMarks } from "./first_visit.js";
import { keepFocusAndShortcut } from "./form_keys.js";
import { RunStore } from "./explainer/store.js";
import { fillSchedulerSelect, karrasValue, schedulerId, setCatalogue } from "./schedulers.js";
import { applyDefaults, clearFieldMessages, clearMessagesWhenFixed, fieldMessage, followForm, mountGuidanceFields, readForm, setDecoderChoice, syncKarras, writeForm } from "./form.js";
import { showBackend } from "./backend_badge.js";
import { mountEstimate } from "./estimate.js";
import { measured, rememberRun } from "./measured.js";
import { endPhase, formatBytes, setProgress, showDownload, showPhase } from "./progress.js";
import { decoderChoice, mountFinalDecoder, previewsNote } from "./stage/final_decoder.js";
import { mountModelCard, mountResultNote } from "./model_card.js";
import { mountModelMenu } from "./model_menu.js";
import { registerServiceWorker } from "./offline.js";
import { isOpenModel } from "./runtime/hub_id.js";
import { mountPicture, PictureError, toInitImage } from "./picture/index.js";
import { prepareWhileTyping } from "./prepare_text.js";
import { mountStage } from "./stage/stage.js";
import { mountTextSizeButton } from "./text_size.js";
import { timingParts, timingSummary } from "./timings.js";

const $ = (id) => document.getElementById(id);
export const store = new RunStore();
const params = new URLSearchParams(location.search);
const preference = params.get("backend") || "auto"; // auto | webgpu | wasm
// The explainer's views load after the first paint (they are most of the page's modules); the
// worker, Pyodide and the model files do not wait for them.
const explainerModule = new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve)))
  .then(() => import("./explainer/index.js"));

// ---------------------------------------------------------------------------------------------
// The worker, as promises

let worker;
let nextId = 0;
const pending = new Map();
let onWorkerEvent = () => {};

/** A fresh worker; it starts Pyodide at once ("init"), and state.init settles when Python is up. */
function startWorker() {
  worker = new Worker(new URL("./runtime/worker.js", import.meta.url), { type: "module" });
  worker.onmessage = ({ data }) => {
    if (data.type !== "reply") return onWorkerEvent(data);
    const { resolve, reject } = pending.get(data.id);
    pending.delete(data.id);
    if (data.error !== undefined) reject(new Error(data.error));
    else resolve(data.value);
  };
  worker.onerror = (event) => showError(`The worker failed: ${event.message || "unknown error"}`);
  state.init = call("init").then((info) => {
    state.gpu = info.gpu;
    state.interrupt = info.interrupt;
    window.sdlens.debug = { ...window.sdlens.debug, boot: info.boot }; // how Python booted, and why no faster way
    setCatalogue(info.schedulers);
    fillSchedulerSelect($("scheduler"));
    if (startupMarks.python === undefined) {
      startupMarks.worker = onPageClock(info.marks.worker);
      startupMarks.python = onPageClock(info.marks.python);
    }
    return info;
  });
}

function call(type, payload = {}) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ type, id, ...payload });
  });
}

// ---------------------------------------------------------------------------------------------
// State and display

const state = { models: [], modelId: null, loading: null, running: false, backend: null, summary: "", timingLine: "" };
const modelCard = mountModelCard({ card: $("model-card"), prompt: $("prompt"), note: $("prompt-vocabulary") });
// "Start from a picture" (img2img): its picture and strength join the form's settings when switched on.
const picture = mountPicture($("start-picture"), { target: () => state.manifest?.defaults, steps: () => $("steps").value });
followForm(() => modelCard.check());
followForm((settings) => picture.reflect(settings));
// The picture, the step strip and the folded settings follow the store (stage/stage.js).
const stage = mountStage({ store, previewLabel: () => state.preview?.label, previewKind: () => state.preview?.kind });
// How long Generate takes here, for a full-size model on a slow backend (estimate.js).
const estimate = mountEstimate($("estimate"), { form: $("controls"), store },
  () => state.modelId && { manifest: state.manifest, backend: state.backend, form: readForm(), own: measured(state.modelId, state.backend) });
// The prompt's embeddings made while it is typed (prepare_text.js).
prepareWhileTyping({ fields: ["prompt", "negative", "guidance", "guidance-slider"].map($), idle: () => state.modelId && !state.running && !state.loading,
  words: readForm, prepare: (settings) => call("prepare", { settings }) });
// "Redraw with the full VAE" under a picture the fast decoder drew (stage/final_decoder.js).
const finalDecoder = mountFinalDecoder({ store, call: (...args) => call(...args), running: () => state.running, busy: setBusy,
  onRedrawn: (timing) => ($("timing").textContent = state.timingLine += timing) });

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function setBusy(running) {
  state.running = running;
  document.body.classList.toggle("running", running); // (a phone keeps the progress line in view: style.css)
  if (!running) endPhase();
  $("generate").disabled = running || !state.modelId;
  $("stop").disabled = !running;
}

onWorkerEvent = (event) => {
  // (progress.js) the files; then the text encoder, a picture's encoder, the final decode, with their seconds
  if (event.type === "download") showDownload(event);
  else if (event.type === "phase") showPhase(event, { who: state.runLabel ? `${state.runLabel}: ` : "", own: measured(state.modelId, state.backend) });
  else if (event.type === "backend") {
    showBackend($("backend-badge"), event.backend);
  } else if (event.type === "sessions") {
    setProgress("Preparing the networks (onnxruntime sessions)…", null);
  } else if (event.type === "step") {
    window.dispatchEvent(new CustomEvent("sdlens:step", { detail: event }));
    if (state.runKey) store.addStep(state.runKey, event);
    const who = state.runLabel ? `${state.runLabel}: ` : "";
    // Heun (and PNDM's first step) call the UNet twice in a step: say which call this is
    const call = event.calls > 1 ? `, UNet call ${event.call + 1} of ${event.calls}` : "";
    setProgress(`${who}Step ${event.step + 1} of ${event.steps}${call}: ${event.ms.toFixed(0)} ms`,
      (event.step + (event.call + 1) / event.calls) / event.steps);
  }
};

// ---------------------------------------------------------------------------------------------
// Models

async function loadModel(modelId) {
  if (state.modelId === modelId && !state.loading) return state.backend;
  if (state.loading && state.loading.modelId === modelId) return state.loading.promise;
  const model = state.models.find((m) => m.id === modelId);
  if (!model) throw new Error(`unknown model ${modelId}; available: ${state.models.map((m) => m.id).join(", ")}`);
  const replaceWorker = Boolean(state.modelId);
  state.modelId = null;
  setBusy(false);
  $("model").value = modelId;
  // Set at once, so that every call made while the worker is replaced and the model loads waits
  // for it (modelReady) instead of reaching a worker that has no model yet.
  const promise = (async () => {
    if (replaceWorker) {
      // A fresh worker per model: onnxruntime's backend is fixed once loaded.
      worker.terminate();
      for (const { reject } of pending.values()) reject(new Error("the model was switched before this finished"));
      pending.clear();
      startWorker();
    }
    setProgress(`Loading ${model.name}…`, 0);
    // Sent at once: the worker downloads the files and creates the sessions while Pyodide boots.
    const loading = call("load", { modelId, manifestUrl: model.manifest, hub: model.hub, preference, threads: params.get("threads"), variant: params.get("variant") });
    loading.catch(() => {}); // where Python fails to start, that is the message (below), not this
    await state.init; // the scheduler menu, which the model's defaults choose from
    const loaded = await loading;
    state.modelId = modelId;
    state.preview = loaded.preview;
    $("previews-note").hidden = false;
    $("previews-note").textContent = previewsNote(loaded.preview, loaded.manifest);
    state.loadTimings = loaded.timings;
    if (startupMarks.files === undefined) {
      startupMarks.files = onPageClock(loaded.timings.marks.files);
      startupMarks.sessions = onPageClock(loaded.timings.marks.sessions);
    }
    state.backend = loaded.backend;
    state.manifest = loaded.manifest;
    showBackend($("backend-badge"), loaded.backend);
    applyDefaults(loaded.manifest.defaults);
    setDecoderChoice(decoderChoice(loaded.manifest, loaded.backend, loaded.preview.fastFinal));
    // An empty box with a greyed example looks filled in; Generate would then draw the empty
    // prompt. Start from the model's first starter prompt instead (a link's prompt replaces it).
    const starter = loaded.manifest.starter_prompts?.[0];
    if (!$("prompt").value.trim() && starter) $("prompt").value = starter;
    modelCard.show(loaded.manifest);
    // The browser would not keep some files (a private window, say): it works now, and the note
    // (which stays, unlike the progress line) says why the next visit downloads them again.
    const kept = loaded.notKept
      ? `This browser did not let the page keep ${loaded.notKept.files} of ${model.name}'s files ` +
        `(${formatBytes(loaded.notKept.bytes)}; "${loaded.notKept.reason}"), so they will be downloaded again next time. ` +
        "A private window keeps little; a normal window keeps them."
      : "";
    const note = [contextNote(), kept].filter(Boolean).join(" ");
    $("context-note").textContent = note;
    $("context-note").hidden = !note;
    setProgress(`${model.name} is ready (${loaded.backend.label}).`, 1);
    setBusy(false);
    estimate.update();
    return loaded.backend;
  })();
  state.loading = { modelId, promise };
  try {
    return await promise;
  } finally {
    if (state.loading?.promise === promise) state.loading = null;
  }
}

async function warnAboutDroppedWords(settings) {
  const tokens = await call("tokenize", { prompt: settings.prompt });
  if (tokens.dropped_note) fieldMessage("prompt", tokens.dropped_note, true); // one line, however long
  return tokens;
}

// ---------------------------------------------------------------------------------------------
// Generate and stop

/**
 * Run one generation. The main view's run (no key, or "main", shown) becomes the current run: the
 * image, the step strip, the explainer, the link and the downloads all follow it, whether or not
 * `explain` keeps its tensors. Side runs (a comparison's B, a sweep: `show: false`) leave those
 * alone; `explain` keeps a side run's tensors in the store under `runKey`. If a run is stopped or
 * fails, the previous current run comes back, whole.
 */
async function generate(request, { explain = false, runKey = null, show = true, label = null, code = null, picturesLater = false } = {}) {
  if (state.running) throw new Error("a generation is already running; press Stop first");
  const started = performance.now();
  const modelId = request.model || readForm().model || state.models.find((m) => m.default).id;
  let settings;
  const key = runKey || "main";
  const mainView = show && key === "main";
  const stored = mainView || explain;
  if (mainView) {
    showError("");
    clearFieldMessages();
  }
  setBusy(true);
  let begun = false;
  try {
    await loadModel(modelId);
    const loaded = performance.now();
    // Read after loading: a model switch sets the form to that model's defaults, so what the
    // request leaves out is the model's own (SD 2.1's 25 DDIM steps at 7.5, not SD-Turbo's 1 at 0).
    settings = { ...readForm(), ...("init_image" in request ? {} : picture.settings()), ...request, model: modelId };
    if (settings.init_image === undefined || settings.init_image === null) delete settings.init_image;
    else settings.init_image = await pictureFor(settings.init_image, mainView);
    for (const field of ["seed", "steps", "guidance"]) settings[field] = String(settings[field]);
    settings.scheduler = schedulerId(settings.scheduler);
    settings.karras = karrasValue(settings.karras);
    setBusy(true);
    const check = await call("check", { settings });
    if (!check.ok) {
      if (mainView) fieldMessage(check.field, check.message);
      const err = new Error(check.message);
      err.field = check.field;
      throw err;
    }
    if (check.warning) fieldMessage("scheduler", check.warning, true);
    if (mainView) writeForm(settings);
    if (mainView) await warnAboutDroppedWords(settings);
    state.mainView = mainView;
    state.runLabel = mainView ? null : label || (key === "compare" ? "Run B" : "Side run");
    if (mainView) $("timing").textContent = ""; // the breakdown below the progress line is this run's, once it is done
    state.runKey = stored ? key : null;
    if (stored) store.begin(key, settings, state.manifest, state.backend, { explained: explain });
    begun = stored;
    setProgress(`${state.runLabel ? `${state.runLabel}: ` : ""}Starting the run…`, null);
    const asked = performance.now();
    // Each step's x̂₀ picture after the final image (a first visit's run): only an explained run
    // keeps the x̂₀ they are decoded from.
    const later = picturesLater && explain && stored && state.preview?.kind !== "linear";
    const result = await call("generate", { settings, explain, code, pictures: !later });
    const answered = performance.now();
    if (result.code_error) {
      // the catch below brings the previous run back
      throw Object.assign(new Error(result.code_error.message), { codeError: result.code_error });
    }
    if (result.cancelled) {
      restore(key, mainView, "Stopped");
      return { cancelled: true };
    }
    const marks = { started, loaded, asked, answered, finished: performance.now() };
    const timings = { ...result.timings, parts: timingParts(result.timings, marks, state.backend.ep, Boolean(result.start)), wall_ms: marks.finished - started };
    rememberRun(modelId, state.backend, settings, result.timings); // (before the views follow the run)
    if (later) store.runs.get(key).picturesPending = true; // the stage plays it once they are decoded
    if (stored) store.finish(key, { ...result, timings }); // the stage draws the finished image
    if (mainView) startupMarks.firstImage ??= performance.now();
    begun = false;
    const summary = timingSummary(timings, state.backend.ep, Number(result.settings.steps));
    if (mainView) state.summary = summary;
    setProgress(mainView ? summary : state.summary || summary, 1);
    if (mainView) {
      state.timingLine = timings.parts.map((p) => `${p.label} ${p.text}`).join(" · ");
      $("timing").textContent = state.timingLine;
    }
    // Step pictures decoded after the final image: every step's (a first visit's run), or only the last
    // step's when the fast decoder drew the final picture (session.py: picture_later)
    const which = later ? "each step's picture" : stored && store.runs.get(key).steps.some((s) => s.picture_later) && "the last step's picture";
    if (which) {
      setProgress(`${summary} Decoding ${which}…`, 1);
      const run = store.runs.get(key);
      const decodeStarted = performance.now();
      await decodeStepPictures(run, (latent, shape) => call("decode", { latent, shape }));
      if (mainView) {
        // Not part of the run's time (the image was shown first): said after it, instead of "0 ms".
        const after = `then ${which} (x̂₀, by ${state.preview.label}), after the image, ${Math.round(performance.now() - decodeStarted)} ms`;
        state.timingLine = [...timings.parts.filter((p) => !later || p.key !== "previews").map((p) => `${p.label} ${p.text}`), after].join(" · ");
        $("timing").textContent = state.timingLine;
      }
      run.picturesPending = false;
      store.emit("pictures", { key });
      if (later) startupMarks.pictures ??= performance.now();
      setProgress(mainView ? summary : state.summary || summary, 1);
    }
    return {
      width: result.width,
      height: result.height,
      rgba: result.rgba,
      backend: state.backend.label,
      timings,
      settings: result.settings,
      attention: explain && state.runKey ? (await import("./explainer/attention.js")).attentionOf(store.runs.get(state.runKey)) : undefined,
      modified_code: result.modified_code,
      scheduler_name: result.scheduler_name,
      unet_calls: result.unet_calls,
      start: result.start, // a run from a picture: where it started (null from noise; see py/sdlens/img2img.py)
      warning: check.warning || "",
    };
  } catch (err) {
    if (begun) restore(key, mainView, "Failed");
    if (mainView) showError(err.message);
    throw err;
  } finally {
    state.runKey = null;
    state.runLabel = null;
    setBusy(false);
  }
}

/** A data URL or {width, height, rgba} as the model's-size picture a run starts from. */
async function pictureFor(value, mainView) {
  try {
    return await toInitImage(value, state.manifest.defaults);
  } catch (err) {
    if (!(err instanceof PictureError)) throw err;
    if (mainView) fieldMessage("init_image", err.message);
    throw Object.assign(new Error(err.message), { field: "init_image" });
  }
}

/** After a stopped or failed run: the run before it is the current run again. */
function restore(key, mainView, what) {
  const previous = store.restore(key);
  if (!mainView) {
    setProgress(state.summary || `${what}.`, state.summary ? 1 : 0);
    return;
  }
  // The picture is the previous run: the form shows its settings, not the stopped request's.
  if (previous && what === "Stopped") writeForm(previous.settings);
  setProgress(previous ? `${what}. Showing the previous run again: ${state.summary}` : `${what}.`, previous ? 1 : 0);
  if (!previous) {
    state.summary = "";
    state.timingLine = "";
  }
  $("timing").textContent = state.timingLine;
}

function stop() {
  if (state.running) worker.postMessage({ type: "stop" });
}

// ---------------------------------------------------------------------------------------------
// Start-up

async function main() {
  startupMarks.module = performance.now();
  const note = contextNote();
  $("context-note").textContent = note;
  $("context-note").hidden = !note;
  // The worker first: Pyodide's boot is the longest part of a first visit.
  startWorker();
  setProgress("Starting Python (Pyodide)…", null);
  $("controls").addEventListener("submit", (event) => {
    event.preventDefault();
    generate({}, { explain: $("explain").checked }).catch(() => {});
  });
  keepFocusAndShortcut($("controls"), $("generate"));
  $("stop").addEventListener("click", stop);
  mountTextSizeButton($("text-size"));
  mountResultNote(store, $("image"));
  mountGuidanceFields();
  clearMessagesWhenFixed((settings) => (state.modelId ? call("check", { settings }) : Promise.resolve(null)), () => showError(""));
  $("random-seed").addEventListener("click", () => {
    const words = crypto.getRandomValues(new Uint32Array(2));
    $("seed").value = String(BigInt(words[0]) * 4294967296n + BigInt(words[1]));
  });
  const menu = await mountModelMenu({
    models: state.models, load: loadModel, current: () => state.modelId, showError, openSettings: () => ($("more-settings").open = true),
    lookUp: (id) => call("hubLook", { hub: id, preference, threads: params.get("threads"), variant: params.get("variant") }),
  });
  $("scheduler").addEventListener("change", syncKarras);

  await menu.openFirst(params.get("model")); // a link's model, else the default
  startupMarks.loaded = performance.now();
  const explainer = await explainerModule;
  explainer.mountExplainer(store);
  startupMarks.mounted = performance.now();
  // With no link, the model's first starter prompt runs by itself (first_visit.js).
  await firstVisit({
    link: explainer.readLink(),
    manifest: state.manifest,
    backend: state.backend,
    form: readForm(),
    run: () => stage.playOnce() || generate({}, { explain: $("explain").checked, picturesLater: true }),
    offer: (text) => setProgress(text, 1),
  });
  // The offline copy (the service worker caches the app's files) once the first picture is shown.
  await registerServiceWorker();
}

// Settles once the model is loaded, the explainer is mounted and a first visit's own run is done,
// so that automation (window.sdlens.generate) never meets that run still going.
const ready = main();
ready.catch((err) => {
  showError(err.message);
  setProgress("Not ready.", 0);
});

/** Settles once the page is ready and no model is loading (a model switch replaces the worker). */
const modelReady = () => ready.then(() => state.loading?.promise);

window.sdlens = {
  ready,
  generate: (options = {}, { show = true, label = null } = {}) => ready.then(() => generate(options, { show, label })),
  /** Validate settings without running: {ok: true} or {ok: false, field, message}. */
  check: (options = {}) => modelReady().then(() => call("check", { settings: { ...readForm(), ...options } })),
  /** Generate with every step's tensors kept for the explainer (run "main" unless runKey says); picturesLater: each step's picture after the final image. */
  explain: (options = {}, runKey = "main", { picturesLater = false } = {}) => ready.then(() => generate(options, { explain: true, runKey, picturesLater })),
  decode: (latent, shape) => modelReady().then(() => call("decode", { latent, shape })),
  /** The main run's final latent drawn again by the full VAE (its picture was the fast decoder's): {width, height, rgba, decoder}. */
  redraw: () => modelReady().then(() => finalDecoder.redraw()),
  /** The estimate beside Generate, as shown: {seconds, source, …, text}, or null where none is shown. */
  estimate: () => estimate.update(),
  /** The forward process (explainer/forward.js): x_t from x₀ and a run's noise, decoded; and ᾱ_t. */
  forward: (args) => modelReady().then(() => {
    if (state.running) throw new Error("a run is in progress; move t again when it is done");
    return call("forward", args);
  }),
  schedule: () => modelReady().then(() => call("schedule")),
  /** A picture ({width, height, rgba} at the model's size) → its latent as a run with `seed` draws it, and its mean. */
  encode: (image, seed = 0) => modelReady().then(() => call("encode", { image, seed: String(seed) })),
  /** Generate with edited Python ({guidance?, step?} source text) in the worker, kept as run `runKey`. */
  explainWithCode: (options, code, runKey = "edited") =>
    ready.then(() => generate(options, { explain: true, runKey, show: false, code })),
  /** Whether `id` (a link's model) is the open model. */
  isOpen: (id) => isOpenModel(id, state.modelId),
  /** Load model `id` (if it is not the current one): the form then holds its defaults. */
  useModel: (id) => ready.then(() => loadModel(id)).catch((err) => {
    showError(err.message);
    throw err;
  }),
  /** The real source of "guidance" or a scheduler's "step", as the worker's Python has it. */
  source: (part, scheduler) => modelReady().then(() => call("source", { part, scheduler })),
  /** Stop a run at once, even inside edited code that never returns (with cross-origin isolation). */
  interrupt: () => {
    if (state.interrupt) state.interrupt[0] = 2;
    stop();
  },
  store,
  picture,
  stop,
  /** What the learner has now (the form, the current run and its progress line), for `bringBack`:
   * the guided tour keeps it at its start and puts it back when it ends. */
  keep: () => ({ form: { ...readForm(), karras: $("karras").checked }, run: store.main || null, selected: store.selected, summary: state.summary, timingLine: state.timingLine }),
  bringBack: (kept) => {
    store.reinstate("main", kept.run, kept.selected); // the stage and its strip follow the store
    writeForm(kept.form);
    state.summary = kept.summary;
    state.timingLine = kept.timingLine;
    setProgress(kept.summary, kept.run ? 1 : 0);
    $("timing").textContent = kept.timingLine;
  },
  tokenize: (prompt) => modelReady().then(() => call("tokenize", { prompt })),
  get backend() {
    return state.backend;
  },
  /** The last model load: {download_ms, sessions_ms, marks} (for the benchmarks). */
  get loadTimings() {
    return state.loadTimings;
  },
  /** When each part of the page's start-up ended, in ms since the page was opened (the benchmarks). */
  startup: startupMarks,
};
