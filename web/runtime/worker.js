// The sdlens worker: Pyodide runs the same py/sdlens files as CPython, and onnxruntime-web runs
// the graphs (WebGPU or WASM). Working here keeps Pyodide's start-up and shader compilation off
// the page's thread, so the page stays responsive.

import { afterSelfCheck, chooseBackend, probeDevice, probeWebGPU } from "./backend.js";
import { bytesToFetch, ensureCached, fetchJson, ModelFileError, readCached } from "./model_files.js";
import { lookUp, manifestOf, tooLarge } from "./hub.js";
import { OrtRuntime } from "./ort_runtime.js";
import { previewImage } from "../preview.js";
import { runF16SelfCheck } from "./selfcheck.js";
import { bootPython, fetchSources } from "./python_boot.js";

// The app's URLs are relative to its folder (this worker sits one level down, in runtime/), so it
// also runs under a static host's sub-path.
const APP_ROOT = new URL("../", import.meta.url);
const appUrl = (path) => new URL(path, APP_ROOT).href;
let pyodide = null;
let gpu = null;
let ort = null;
let loaded = null; // {modelId, manifest, backend, session}
let stopRequested = false;
// Shared with the page: it writes 2 to stop edited Python mid-step (needs cross-origin isolation). The
// edited code's own lines read it (py/sdlens/edited.py); it is not Pyodide's interrupt buffer, whose
// interrupt may land while Python waits for a UNet call, and such a wait never returns.
const interrupt = self.crossOriginIsolated ? new Int32Array(new SharedArrayBuffer(4)) : null;

const post = (message) => self.postMessage(message);
const workerStarted = performance.timeOrigin + performance.now();

/** A Python result as plain JavaScript; the Python proxy is freed (proxies are not garbage collected). */
function fromPython(proxy) {
  const value = proxy.toJs({ dict_converter: Object.fromEntries });
  proxy.destroy();
  return value;
}

// One turn of the event loop, so that a waiting "stop" message is delivered. onnxruntime's WASM
// runs resolve as microtasks, which never let messages in; a MessageChannel round trip does,
// without setTimeout's clamping to 4 ms.
const channel = new MessageChannel();
const waiting = [];
channel.port1.onmessage = () => waiting.shift()();
const yieldToEvents = () => new Promise((resolve) => { waiting.push(resolve); channel.port2.postMessage(null); });
const shouldStop = async () => { await yieldToEvents(); return stopRequested; };

/** Pyodide with py/sdlens imported (python_boot.js: from a snapshot where valid); the Python
 * files are fetched while it boots. */
async function startPython() {
  const sources = fetchJson(appUrl("api/python.json")).then((files) => fetchSources(appUrl, files));
  const booted = await bootPython(appUrl, sources);
  if (typeof WebAssembly.Suspending !== "function") {
    // The pipeline's Python waits for onnxruntime's promises through JSPI (py/sdlens/browser).
    throw new Error("This browser cannot run the model: it lacks WebAssembly JavaScript Promise Integration " +
      "(JSPI). Open the page in Chrome or Edge 137 or newer, Firefox 153 or newer (ESR too), or Safari 27 or newer.");
  }
  pyodide = booted.pyodide;
  return booted.boot;
}

// Started by the first message ("init"), and awaited only where Python or the adapter is needed:
// the page sends "load" at once, so the model files download and onnxruntime's sessions are
// created while Pyodide boots.
let started = null; // {gpu: Promise, python: Promise}
const startUp = () => (started ??= { gpu: probeWebGPU(), python: startPython() });
const now = () => performance.timeOrigin + performance.now(); // comparable with the page's clock

async function loadOrt(ep, threads) {
  if (ort) return ort;
  // The WebGPU build also runs WASM; the WASM-only build is half the download.
  const file = ep === "webgpu" ? "ort.webgpu.min.mjs" : "ort.wasm.min.mjs";
  ort = await import(`../vendor/ort/${file}`);
  ort.env.wasm.wasmPaths = appUrl("vendor/ort/");
  ort.env.wasm.numThreads = threads; // fixed at the first session; backend.js chooses it
  ort.env.logLevel = "error";
  return ort;
}

/** The tokenizer's JSON; models ship it gzipped (3.6 MB of vocabulary becomes 0.6 MB). */
async function tokenizerText(path, bytes) {
  if (!path.endsWith(".gz")) return new TextDecoder().decode(bytes);
  try {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return await new Response(stream).text();
  } catch (e) {
    throw new ModelFileError(`model file ${path} is not a readable gzip file (${e.message})`);
  }
}

/** The manifest's files this backend needs: tokenizer, then each graph's files (in each
 * component's chosen variant, backend.variants) in load order. */
function neededFiles(manifest, variants, extra = []) {
  const needed = tokenizerFiles(manifest);
  for (const component of ["text_encoder", "unet", "vae_decoder"]) {
    needed.push(...manifest.components[component].variants[variants[component]].files);
  }
  return [...needed, ...extra];
}

/** The tokenizer's file entries: one tokenizer.json.gz (an export) or a Hub repo's vocab.json,
 * merges.txt and tokenizer_config.json, as published. */
const tokenizerFiles = (manifest) => manifest.tokenizer.files ? Object.values(manifest.tokenizer.files) : [manifest.tokenizer.file];

/** Their texts, by the manifest's keys ("file", or "vocab", "merges", "config"): what Python reads. */
async function tokenizerTexts(manifest, base) {
  const entries = manifest.tokenizer.files || { file: manifest.tokenizer.file };
  const texts = {};
  for (const [key, entry] of Object.entries(entries)) texts[key] = await tokenizerText(entry.path, await readCached(base, entry));
  return JSON.stringify(texts);
}

let f16Check = null; // the fp16 self-check's result, once per worker (one adapter)

/** A Hub repo looked up (hub.js), read by py/sdlens/browser/hub.py once Python is up. */
async function planHub(hub) {
  await startUp().python;
  return lookUp(hub, pyodide.pyimport("sdlens.browser.hub"));
}

const deviceOf = (threads, variant) => ({ ...probeDevice(), isolated: self.crossOriginIsolated, requested: threads ? Number(threads) : null, variant });

/** What the page shows before a Hub model downloads: the summary, whether (and how) this browser
 * runs it, and how much is still to download (files already in the cache are not). */
async function hubLook({ hub, preference, threads, variant }) {
  const plan = await planHub(hub);
  gpu = await startUp().gpu;
  const { repo, commit, summary, manifest } = plan;
  const refusal = tooLarge(summary);
  if (refusal) return { repo, commit, summary, runs: { ok: false, message: refusal } };
  let backend;
  try {
    backend = chooseBackend(manifest, gpu, preference, deviceOf(threads, variant));
  } catch (err) {
    return { repo, commit, summary, runs: { ok: false, message: err.message } };
  }
  const toFetch = await bytesToFetch(plan.base, neededFiles(manifest, backend.variants));
  return { repo, commit, summary, runs: { ok: true, label: backend.label, reason: backend.reason }, toFetch };
}

async function loadModel({ modelId, manifestUrl, hub, preference, threads, variant }) {
  const boot = startUp();
  const marks = { load: now() };
  // A Hub repo: its manifest is known in full only once its graphs are open (their inputs and
  // outputs); until then the plan's skeleton (files, where they run) chooses and downloads.
  const plan = hub ? await planHub(hub) : null;
  const refusal = plan && tooLarge(plan.summary);
  if (refusal) throw new ModelFileError(refusal);
  let manifest = plan ? plan.manifest : await fetchJson(appUrl(manifestUrl));
  gpu = await boot.gpu;
  const device = deviceOf(threads, variant);
  let backend = chooseBackend(manifest, gpu, preference, device);
  await loadOrt(backend.ep, backend.threads);
  if (backend.ep === "webgpu" && backend.variant === "fp16") {
    f16Check ??= await runF16SelfCheck(ort);
    backend = afterSelfCheck(backend, f16Check, manifest, gpu, preference, device);
  }
  backend.threads = ort.env.wasm.numThreads;
  post({ type: "backend", backend }); // the badge tells the choice while the files download
  const base = plan ? plan.base : new URL(manifestUrl, APP_ROOT);
  const origin = plan?.origin; // the words a failed check uses: the Hub's listing, or manifest.json
  const needed = neededFiles(manifest, backend.variants);
  // Each graph's files are read back from the cache only while its session is created, then
  // dropped: onnxruntime keeps its own copy, and the page holds no second one.
  const byPath = new Map();
  const openFile = async (path) => {
    if (!byPath.has(path)) throw new ModelFileError(`model file ${path} is not in the manifest`);
    return readCached(base, byPath.get(path));
  };
  const runtime = new OrtRuntime(ort, backend, openFile);
  // The small tensor-math graphs every run uses (guidance, a scheduler's update, concat/split of
  // the batch, the final RGB bytes), made while the model files download: the first one also
  // compiles and starts onnxruntime's wasm, which a fresh profile would otherwise wait for after it.
  const opsMade = (async () => {
    for (const op of ["concat_2", "split_2", "combine_1", "combine_2", "combine_3", "to_rgb"]) await runtime.op(op);
  })();
  opsMade.catch(() => {}); // (awaited below, after the downloads, before the model's own sessions:
  // onnxruntime creates one session at a time)
  const downloadStarted = performance.now();
  const notKept = [];
  const download = async (entries) => {
    for (const entry of entries) byPath.set(entry.path, entry);
    const cached = await ensureCached(base, entries, (progress) => post({ type: "download", ...progress }), origin);
    notKept.push(...cached.notKept);
  };
  await download(needed);
  let downloadMs = performance.now() - downloadStarted;
  marks.files = now();
  // The sessions, created now (while Python may still be booting) so the first Generate does not
  // pay for them; the pipeline's graphs take them over by path (OrtRuntime.load).
  const sessionsStarted = performance.now();
  post({ type: "sessions", total: 3 });
  await opsMade;
  const opened = {};
  for (const component of ["text_encoder", "unet", "vae_decoder"]) {
    const [first, ...rest] = manifest.components[component].variants[backend.variants[component]].files.map((f) => f.path);
    opened[component] = await runtime.preload(first, rest);
  }
  if (plan) manifest = manifestOf(plan, opened, pyodide.pyimport("sdlens.browser.hub"));
  let sessionsMs = performance.now() - sessionsStarted;
  marks.sessions = now();
  await boot.python;
  marks.python = now();
  // Which decoder draws the per-step pictures decides whether a preview decoder is downloaded.
  const previewPlan = fromPython(pyodide.pyimport("sdlens.browser.preview").StepPreview.plan(JSON.stringify(manifest), backend.variant, backend.ep));
  if (previewPlan.files.length) {
    const extraStarted = performance.now();
    await download(previewPlan.files);
    downloadMs += performance.now() - extraStarted;
  }
  const tokenizer = await tokenizerTexts(manifest, base);
  const Session = pyodide.pyimport("sdlens.browser.session").BrowserSession;
  const session = Session(JSON.stringify(manifest), tokenizer, runtime, backend.variant, backend.ep,
    JSON.stringify(backend.variants));
  const adoptStarted = performance.now();
  const graph = session.pipeline.graph;
  for (const component of ["text_encoder", "unet", "vae_decoder"]) await graph.callPromising(component);
  graph.destroy();
  await session.preview.prepare.callPromising();
  sessionsMs += performance.now() - adoptStarted;
  const preview = fromPython(session.preview_info());
  loaded = { modelId, manifest, backend, session, runtime, preview, base, origin, byPath, encoder: null };
  marks.ready = now();
  const timings = { download_ms: downloadMs, sessions_ms: sessionsMs, marks };
  const kept = notKept.length
    ? { files: notKept.length, bytes: notKept.reduce((sum, f) => sum + f.bytes, 0), reason: notKept[0].reason }
    : null;
  return { modelId, backend, manifest, preview: { kind: preview.kind, label: preview.label, width: preview.width, height: preview.height, fastFinal: preview.fast_final }, timings, notKept: kept };
}

/**
 * The VAE encoder's files, fetched (or read from the cache) the first time a run starts from a
 * picture: text-to-image never needs them, so loading a model does not download them. Its session
 * is then created by Python on first use (Pipeline.graph). A model without an encoder, or without
 * this variant of it, is left to Python, which says so in words.
 */
async function ensureEncoder() {
  const { manifest, backend, base, origin, byPath } = loaded;
  const files = manifest.components.vae_encoder?.variants?.[backend.variant]?.files;
  if (!files) return;
  loaded.encoder ??= ensureCached(base, files, (progress) => post({ type: "download", component: "vae_encoder", ...progress }), origin)
    .then(() => files.forEach((entry) => byPath.set(entry.path, entry)))
    .catch((err) => {
      loaded.encoder = null; // the next try downloads again
      throw err;
    });
  await loaded.encoder;
}

async function generate({ settings, explain = false, code = null, pictures = true }) {
  stopRequested = false;
  if (settings.init_image) await ensureEncoder();
  const { session, manifest } = loaded;
  const { width, height } = loaded.preview; // of each step's picture (a preview decoder's may be smaller)
  const latentWidth = manifest.defaults.width / manifest.vae_scale_factor;
  const onStep = (info, tensors, picture) => {
    // x̂0 through the decoder (preview.py), or through the linear map where there is none.
    const preview = picture
      ? { width, height, rgba: rgbToRgba(picture, width * height), source: loaded.preview.kind }
      : { ...previewImage(tensors.x0, manifest, latentWidth), source: "linear" };
    // a picture the page decodes after the final image (session.py: picture_later) keeps its x̂0
    const later = info.picture_later && !explain ? { x0_later: tensors.x0 } : {};
    if (!explain) delete tensors.x0;
    const transfer = [preview.rgba.buffer, ...[...Object.values(tensors), ...Object.values(later)].map((t) => t.buffer)];
    post({ type: "step", ...info, preview, tensors: explain ? tensors : undefined, ...later }, transfer);
  };
  const pySettings = pyodide.toPy(settings);
  const pyCode = code ? pyodide.toPy(code) : undefined; // (JavaScript null would reach Python as JsNull)
  if (interrupt) interrupt[0] = 0; // a Stop pressed after the last run must not hit this one
  // The long parts (text encoder, the picture through the VAE encoder, the final decode) are
  // announced as they begin, so the page can say what the wait is for.
  // (a UNet call's phase also says which: step of steps, call of calls, and the batch)
  const onPhase = (phase, decoder, step, steps, call, calls, batch) =>
    post({ type: "phase", phase, decoder, at: now(), ...(phase === "unet" ? { step, steps, call, calls, batch } : {}) });
  const js = fromPython(await session.generate.callPromising(pySettings, onStep, shouldStop, explain, pyCode, pictures, onPhase, interrupt || undefined));
  if (interrupt) interrupt[0] = 0;
  pySettings.destroy();
  pyCode?.destroy();
  if (js.cancelled) return { cancelled: true };
  if (js.code_error) return js;
  const rgba = rgbToRgba(js.rgb, js.width * js.height);
  delete js.rgb;
  return { ...js, rgba };
}

/** A picture's latent, drawn as a run from it with `seed` draws it, and its mean (see session.encode). */
async function encode({ image, seed = 0 }) {
  await ensureEncoder();
  const pyImage = pyodide.toPy(image);
  try {
    return fromPython(await loaded.session.encode.callPromising(pyImage, String(seed)));
  } finally {
    pyImage.destroy();
  }
}

function rgbToRgba(rgb, pixels) {
  const rgba = new Uint8ClampedArray(pixels * 4);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    rgba[j] = rgb[i];
    rgba[j + 1] = rgb[i + 1];
    rgba[j + 2] = rgb[i + 2];
    rgba[j + 3] = 255;
  }
  return rgba;
}

const handlers = {
  async init() {
    const boot = startUp();
    gpu = await boot.gpu;
    const python = await boot.python;
    // The scheduler menu comes from the Python classes, the one place their names are written.
    const schedulers = fromPython(pyodide.pyimport("sdlens.browser.session").schedulers());
    return { gpu, interrupt, schedulers, boot: python, marks: { worker: workerStarted, python: now() } };
  },
  load: loadModel,
  hubLook,
  generate,
  encode,
  async decode({ latent, shape }) {
    const { rgb, width, height, by } = fromPython(await loaded.session.decode.callPromising(latent, shape));
    return { width, height, by, rgba: rgbToRgba(rgb, width * height) };
  },
  // A run's final latent drawn again by the other decoder ("redraw with the VAE"), no new steps.
  async redraw({ latent, shape, decoder }) {
    post({ type: "phase", phase: "decode", decoder: decoder === "fast" ? "the fast decoder (TAESD)" : "the VAE", at: now() });
    const js = fromPython(await loaded.session.redraw.callPromising(latent, shape, decoder));
    return { ...js, rgba: rgbToRgba(js.rgb, js.width * js.height), rgb: undefined };
  },
  // The forward-process view (explainer/forward.js): x_t from a run's x₀ and its own noise ε, and
  // the UNet's ε̂ from that x_t: three pictures.
  async forward({ x0, shape, t, seed, fromPicture, prompt }) {
    const forward = pyodide.pyimport("sdlens.browser.forward");
    const js = fromPython(await forward.forward.callPromising(loaded.session, x0, shape, t, seed, fromPicture, prompt));
    forward.destroy();
    const picture = (p) => ({ ...p, rgba: rgbToRgba(p.rgb, p.width * p.height), rgb: undefined });
    return { ...picture(js), eps: picture(js.eps), predicted: picture(js.predicted) };
  },
  async schedule() {
    const forward = pyodide.pyimport("sdlens.browser.forward");
    const alphas = fromPython(forward.schedule(loaded.session));
    forward.destroy();
    return alphas;
  },
  async source({ part, scheduler }) {
    return loaded.session.source(part, scheduler);
  },
  async tokenize({ prompt }) {
    return fromPython(loaded.session.tokenize(prompt));
  },
  // The prompt's embeddings ahead of a run (prepare_text.js): {ran, ms}; nothing before a model is loaded.
  async prepare({ settings }) {
    if (!loaded?.session) return { ran: false, ms: 0 };
    const pySettings = pyodide.toPy(settings);
    try {
      return fromPython(await loaded.session.prepare_text.callPromising(pySettings));
    } finally {
      pySettings.destroy();
    }
  },
  async check({ settings }) {
    const pySettings = pyodide.toPy(settings);
    try {
      return fromPython(loaded.session.check(pySettings));
    } finally {
      pySettings.destroy();
    }
  },
};

// The handlers that run onnxruntime sessions take turns. Two runs in flight at once (a stage
// decode arriving during a generate, say) interleave on one device through JSPI, and on WebGPU
// one of them then reads a buffer whose mapping the other is still waiting for ("Failed to
// download data from buffer"). Tokenizing and checking settings are plain Python and need no turn.
const USES_ORT = new Set(["load", "generate", "encode", "decode", "redraw", "forward", "prepare"]);
let turn = Promise.resolve();
function inTurn(work) {
  const result = turn.then(work);
  turn = result.catch(() => {});
  return result;
}

self.onmessage = async ({ data }) => {
  if (data.type === "stop") {
    stopRequested = true;
    return;
  }
  try {
    const handler = handlers[data.type];
    const value = await (USES_ORT.has(data.type) ? inTurn(() => handler(data)) : handler(data));
    post({ type: "reply", id: data.id, value });
  } catch (err) {
    const message = String(err?.message || err).split("\n").filter(Boolean);
    // Python errors arrive as a traceback; the user needs its last line, without the class name.
    const last = message[message.length - 1] || "unknown error";
    post({ type: "reply", id: data.id, error: last.replace(/^[\w.]*(SdlensError|Error): /, "") });
  }
};
