// A first visit shows the model working: with no link, the page runs the model's first starter
// prompt by itself, so nobody meets an empty grey square. A link runs its own settings instead
// (explainer/links.js). A full-size model on a slow backend would keep a class waiting for
// minutes, so there the run is offered, with its estimated time, rather than started.

/** When each part of the start-up ended, in ms since the page was opened (performance.now()). */
export const startupMarks = {};

/** A time from the worker's clock (performance.timeOrigin + now there) on the page's clock. */
export const onPageClock = (epochMs) => epochMs - performance.timeOrigin;

// What a first run of a full-size model costs on WASM, measured on this project's reference
// machine (README, "Benchmarks": SD-Turbo-shaped, int8, 2 threads, 512²): one UNet call on a
// 64×64 latent, and the VAE decode of a 512×512 picture. Other sizes scale with their pixels,
// other thread counts inversely; the estimate is rough and says so.
const WASM_UNET_CALL_S = 12.5;
const WASM_VAE_DECODE_S = 39.4;
const REFERENCE_THREADS = 2;
// A UNet over this many bytes (the chosen variant's files) is a full-size model, not a classroom one
// (the default model's is under 10 MB; SD-Turbo's smallest, int8, is 865 MB).
const FULL_SIZE_UNET_BYTES = 200e6;

const unetBytes = (manifest, backend) =>
  (manifest.components?.unet?.variants?.[backend.variant]?.files || []).reduce((sum, f) => sum + f.bytes, 0);

/** WASM, or a WebGPU adapter that is software: each full-size step takes seconds. */
const isSlow = (backend) => backend.ep === "wasm" || backend.label.endsWith("(software)");

/** Roughly how many seconds a run with `form`'s settings takes, from the reference measurements. */
export function estimateSeconds(manifest, backend, form) {
  const { width, height } = manifest.defaults;
  const factor = manifest.vae_scale_factor || 8;
  const pixels = width * height;
  const latentPixels = pixels / (factor * factor);
  const threads = REFERENCE_THREADS / Math.max(1, backend.threads || 1);
  const guided = Number(form.guidance) > 1 ? 2 : 1; // classifier-free guidance runs a batch of two
  const unet = Number(form.steps) * guided * WASM_UNET_CALL_S * (latentPixels / 4096) * threads;
  return unet + WASM_VAE_DECODE_S * (pixels / (512 * 512)) * threads;
}

/**
 * Each step's x̂₀ picture, decoded after the final image is shown: a first visit's run skips them
 * while it runs (on the default model they were 40 % of its time: `python -m tests.bench browser`)
 * and shows the linear latent→RGB map meanwhile. `decode(step)` is the worker's decode, the same
 * decoder the step strip uses, so each picture equals the one a normal run shows.
 */
export async function decodeStepPictures(run, decode) {
  for (const step of run.steps) {
    if (step.preview.source !== "linear" || !step.tensors?.x0) continue;
    const { width, height, rgba, by } = await decode(step);
    step.preview = { width, height, rgba, source: by };
  }
}

const inWords = (s) => (s < 90 ? `${Math.round(s)} seconds` : `${Math.round(s / 60)} minutes`);

/**
 * Run the first visit's picture, or offer it. `link` is readLink()'s answer; `form` the form's
 * settings; `run()` generates from the form; `offer(text)` shows the offer. `?autorun=0` keeps
 * the page idle (for tests that need a page where nothing has run).
 */
export async function firstVisit(page) {
  startupMarks.firstVisit = await decide(page);
  return startupMarks.firstVisit;
}

/** What a first visit does: "ran", "offered", or why it did nothing ("link", "off", "no prompt"). */
async function decide({ link, manifest, backend, form, run, offer, search = location.search }) {
  if (new URLSearchParams(search).get("autorun") === "0") return "off";
  if (link.settings.prompt || link.compare) return "link"; // the link's run (links.js) is the first one
  if (!form.prompt.trim()) return "no prompt";
  if (isSlow(backend) && unetBytes(manifest, backend) >= FULL_SIZE_UNET_BYTES) {
    const seconds = estimateSeconds(manifest, backend, form);
    offer(`${manifest.name} is ready (${backend.label}). Press Generate to draw “${form.prompt}”: ` +
      `about ${inWords(seconds)} on this backend (estimated; a full-size model on ${backend.ep === "wasm" ? "the CPU" : "a software GPU"}).`);
    return "offered";
  }
  startupMarks.firstRun = performance.now();
  await run().catch(() => {}); // its message is already by the form; the page stays usable
  return "ran";
}
