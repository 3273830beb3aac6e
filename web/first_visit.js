// A first visit shows the model working: with no link, the page runs the model's first starter
// prompt by itself, so nobody meets an empty grey square. A link runs its own settings instead
// (explainer/links.js). A full-size model on a slow backend would keep a class waiting for
// minutes, so there the run is offered, with its estimated time, rather than started.

import { estimateRun, estimateSeconds, isFullSize, isSlow } from "./estimate.js";
import { measured } from "./measured.js";

export { estimateSeconds, isFullSize, isSlow }; // (where they were first, for older importers)

/** When each part of the start-up ended, in ms since the page was opened (performance.now()). */
export const startupMarks = {};

/** A time from the worker's clock (performance.timeOrigin + now there) on the page's clock. */
export const onPageClock = (epochMs) => epochMs - performance.timeOrigin;

/**
 * Each step's x̂₀ picture, decoded after the final image is shown: a first visit's run skips them
 * while it runs (on the default model they were 40 % of its time: `python -m tests.bench browser`)
 * and shows the linear latent→RGB map meanwhile; a run whose final picture the fast decoder draws
 * leaves its last step's picture here the same way (step.x0_later). `decode(x0, shape)` is the
 * worker's decode, the same decoder the step strip uses, so each picture equals the one a normal
 * run shows.
 */
export async function decodeStepPictures(run, decode) {
  for (const step of run.steps) {
    const x0 = step.tensors?.x0 || step.x0_later;
    if (step.preview.source !== "linear" || !x0) continue;
    const { width, height, rgba, by } = await decode(x0, step.shape);
    step.preview = { width, height, rgba, source: by };
    delete step.x0_later;
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
  if (isSlow(backend) && isFullSize(manifest, backend)) {
    // this browser's own last run of this model where there is one (estimate.js)
    const { seconds, source, unmeasured } = estimateRun(manifest, backend, form, measured(form.model, backend));
    const how = (source === "measured" ? "measured on this browser's last run" : "estimated") +
      (unmeasured.length ? `, plus ${unmeasured.join(" and ")}, not yet timed here` : "");
    offer(`${manifest.name} is ready (${backend.label}). Press Generate to draw “${form.prompt}”: ` +
      `about ${inWords(seconds)} on this backend (${how}; a full-size model on ${backend.ep === "wasm" ? "the CPU" : "a software GPU"}).`);
    return "offered";
  }
  startupMarks.firstRun = performance.now();
  await run().catch(() => {}); // its message is already by the form; the page stays usable
  return "ran";
}
