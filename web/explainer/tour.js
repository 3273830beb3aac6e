// A guided tour for a class: one run, from a starter prompt to the decoded image, in short stops.
// Each stop opens the live view it explains, outlines it and scrolls to it; its words quote the
// run's own numbers. Keyboard: Next/Back (Enter, or → ←), Esc leaves; the tour is a
// non-modal dialog whose stops are announced to screen readers. "Larger text" suits a projector.
// The tour borrows the page: when it ends, the learner's prompt, settings, run and text size come
// back as they were. Its card sits beside, below or above what it points at, never on it.

import { heldOutPairsIn, pairNamed } from "../held_out.js";
import { selectedManifest } from "./starters.js";
import { hiddenNow, settled } from "./settled.js";
import { placeCardBy } from "./tour_place.js";
import { isLargeText, mountTextSizeButton, setLargeText } from "../text_size.js";

const $ = (id) => document.getElementById(id);
const esc = (text) => String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

const debug = () => window.sdlens.debug;
// The tour scrolls to each stop's target itself: a panel it opens must not scroll the page after
// the card is placed (detail.js brings a panel the learner opens into view).
const openPanel = (id) => debug().open(id, { intoView: false });
const run = () => window.sdlens.store.main;
const step = () => window.sdlens.store.step();

function stripTitled(prefix) {
  return [...document.querySelectorAll("#detail .strip")].find((row) => row.querySelector("h4")?.textContent.startsWith(prefix));
}

/**
 * Close the open panel and wait until it is gone: closing ends by focusing the overview, and the
 * tour must take the focus back after that, not before.
 */
async function closePanel() {
  debug().close();
  // Hidden when its closing transition ends; a panel opened again meanwhile will not be.
  await hiddenNow($("detail"), () => Boolean(debug().panel()));
}

/** Generate the tour's run from the prompt in the form (the settings are the form's). */
async function generateFromForm() {
  await window.sdlens.explain({ prompt: $("prompt").value });
}

function starterPrompt(manifest, wantHeldOut) {
  const prompts = manifest?.starter_prompts || [];
  const fits = prompts.filter((p) => heldOutPairsIn(p, manifest).length > 0 === wantHeldOut);
  return fits[0] || null;
}

/**
 * The stops. `target` is the element the stop points at; `enter` prepares the view (may be
 * async: Next waits for it); `waiting` is the text while `enter` works, where `text` would still
 * describe the state before it; `when` leaves a stop out for models it does not fit.
 */
export const STOPS = [
  {
    id: "welcome", title: "Welcome: how does a computer draw from words?", target: () => $("controls"),
    text: (c) => `In this tour we make one picture with <b>${esc(c.manifest?.name || "this model")}</b> and follow it through
      the model, stop by stop. ${c.manifest?.description ? esc(c.manifest.description) : ""}`,
  },
  {
    id: "prompt", title: "A prompt the model knows", target: () => $("prompt"),
    enter: (c) => {
      if (c.prompt) {
        $("prompt").value = c.prompt;
        $("prompt").dispatchEvent(new Event("input", { bubbles: true }));
      }
    },
    text: (c) => `A model can only draw what it learned. We take one of its starter prompts:
      “<b>${esc($("prompt").value)}</b>”.`,
  },
  {
    id: "generate", title: "Generate", target: () => $("image"),
    enter: () => generateFromForm(),
    // Until this stop's run is done, the store's main run is the one before it: say nothing of it.
    waiting: () => "Generating… every step runs live, here in the browser.",
    text: () => run()?.final
      ? `Done: ${run().steps.length} denoising steps took ${(run().timings.total_ms / 1000).toFixed(1)} s on this computer
         (${esc(run().backend.label)}). The big picture is the result; the small ones show the model's guess at each step.`
      : "Generating… every step runs live, here in the browser.",
  },
  {
    id: "overview", title: "Three parts", target: () => $("overview"),
    enter: () => closePanel(),
    text: () => `Stable Diffusion has three parts: one turns words into numbers, one refines a noisy latent picture step by
      step, and one blows the latent up into pixels. The labels on the arrows are this model's real sizes.`,
  },
  {
    id: "tokens", title: "Words become tokens", target: () => document.querySelector("#detail ol.tokens"),
    enter: () => openPanel("text"),
    text: () => {
      const t = run().tokens;
      return `The tokenizer cut the prompt into <b>${t.length - 2}</b> tokens, each with its id in CLIP's vocabulary, between a
        start and an end token; the rest of the ${t.max_length} places are padding.`;
    },
  },
  {
    id: "clip", title: "How the text encoder learned meaning", target: () => $("clip-lesson"),
    enter: () => {
      openPanel("text");
      const lesson = $("clip-lesson");
      if (lesson) lesson.open = true;
    },
    text: () => `The text encoder turns each token into ${run().textShape[2]} numbers. CLIP learned to place a caption near its
      picture by comparing every caption with every picture in a batch: press “show after training” to see the idea.`,
  },
  {
    id: "noise", title: "It starts as pure noise", target: () => $("timeline"),
    enter: () => {
      window.sdlens.store.select(0);
      openPanel("refiner");
    },
    text: () => `Step 1 of ${run().steps.length}: the latent is random numbers from seed <b>${esc(run().settings.seed)}</b>,
      noise level σ = ${step().sigma.toFixed(2)}. The slider (or ← →) moves through the steps; every view follows it.`,
  },
  {
    id: "eps", title: "The UNet predicts the noise", target: () => stripTitled("ε"),
    enter: () => openPanel("refiner"),
    text: () => (step().tensors.eps_uncond
      ? "The UNet guesses which part of the latent is noise, twice: once without the prompt (ε_uncond) and once with it (ε_cond)."
      : "The UNet guesses which part of the latent is noise. Guidance is off, so it runs once, with the prompt."),
  },
  {
    id: "guidance", title: "Guidance pushes harder", target: () => $("guidance-geometry"),
    enter: () => openPanel("refiner"),
    text: () => {
      const geo = debug().displayed.guidanceGeometry;
      if (!geo || geo.push === null) return `Guidance g = ${esc(run().settings.guidance)} ≤ 1 is off: ε is the prompt's own prediction.`;
      const fmt = (x) => (Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2)); // as the figure's caption writes them
      return `The arrows are the two predictions. The prompt moves the prediction by ${fmt(geo.difference)};
        guidance g = ${geo.guidance} goes ${geo.guidance}× as far, ${fmt(geo.push)}, to the ε that is used.`;
    },
  },
  {
    id: "scheduler", title: "The scheduler removes some noise", target: () => document.querySelector("#detail .scheduler"),
    enter: () => openPanel("refiner"),
    text: () => `The scheduler (${esc(run().settings.scheduler)}) mixes the latent and the guided ε with these numbers to make
      the slightly cleaner latent of the next step.`,
  },
  {
    id: "guess", title: "Halfway: the model's guess", target: () => stripTitled("x̂₀"),
    enter: () => {
      window.sdlens.store.select(Math.floor((run().steps.length - 1) / 2));
      openPanel("refiner");
    },
    text: () => `At step ${window.sdlens.store.selected + 1} of ${run().steps.length} (σ = ${step().sigma.toFixed(2)}) this is
      what the model thinks the clean picture is. Play the timeline to watch it sharpen.`,
  },
  {
    id: "upscaler", title: "From latent to pixels", target: () => $("detail"),
    enter: () => openPanel("upscaler"),
    text: () => `The last latent, ${run().steps.at(-1).shape.slice(1).join("×")} numbers, is decoded by the VAE into the
      ${run().final.width}×${run().final.height} picture.`,
  },
  {
    id: "never-seen", title: "Drawing what it never saw", target: () => $("generalisation"),
    when: (c) => Boolean(c.heldOutPrompt),
    enter: async (c) => {
      await closePanel();
      $("prompt").value = c.heldOutPrompt;
      await generateFromForm();
    },
    text: (c) => {
      const pairs = heldOutPairsIn(c.heldOutPrompt, c.manifest).map((p) => pairNamed(p, c.manifest)).join(" and ");
      return `Now “${esc(c.heldOutPrompt)}”: training never showed this model ${esc(pairs)}, yet here is what it
        drew: to draw it, the model has to combine words it learned apart. That is generalisation.`;
    },
  },
  {
    id: "end", title: "Your turn", target: () => $("compare-section"),
    enter: () => closePanel(),
    text: () => "Change one word and compare two runs side by side, or sweep the guidance. Every number on this page comes from the runs in your browser.",
  },
];

export function mountTour(button, store) {
  const card = document.createElement("div");
  card.className = "tour-card";
  card.id = "tour-card";
  card.hidden = true;
  card.setAttribute("role", "dialog");
  card.setAttribute("aria-modal", "false");
  card.setAttribute("aria-labelledby", "tour-title");
  card.setAttribute("aria-describedby", "tour-text");
  card.innerHTML = `
    <div class="tour-head"><span id="tour-count"></span>
      <button type="button" id="tour-large" aria-pressed="false">A+</button>
      <button type="button" id="tour-exit" aria-label="leave the tour (Esc)">✕</button></div>
    <h3 id="tour-title"></h3>
    <p id="tour-text"></p>
    <p id="tour-status" class="note" aria-live="polite"></p>
    <div class="tour-nav"><button type="button" id="tour-back">◀ Back</button><button type="button" id="tour-next">Next ▶</button></div>`;
  document.body.append(card);
  const get = (id) => card.querySelector(`#${id}`);
  let stops = [];
  let index = -1;
  let context = {};
  let pending = Promise.resolve();
  let target = null;

  // A view may still grow after its stop is shown (a lesson opening, a picture decoded), or be
  // pushed down by one above it (the page grows): the card moves with it, never onto it.
  const resized = new ResizeObserver(() => !card.hidden && target && placeCardBy(card, target));
  // What no observer reports (a view above that moves it without a resize, an animation): a
  // look five times a second while the tour is open.
  setInterval(() => {
    if (card.hidden || !target) return;
    const a = card.getBoundingClientRect();
    const b = target.getBoundingClientRect();
    if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) placeCardBy(card, target);
  }, 200);
  function point(element) {
    target?.classList.remove("tour-target");
    resized.disconnect();
    target = element;
    delete card.dataset.side;
    if (!element) return;
    element.classList.add("tour-target");
    // A stop inside a fold (the panel's "all numbers", a view under the stage) opens it first.
    for (let fold = element.closest("details"); fold; fold = fold.parentElement?.closest("details")) fold.open = true;
    placeCardBy(card, element);
    resized.observe(element);
    resized.observe(document.body);
  }
  addEventListener("resize", () => !card.hidden && target && placeCardBy(card, target));
  addEventListener("scroll", () => !card.hidden && target && placeCardBy(card, target, { scroll: false }), { passive: true });

  async function go(to) {
    if (to < 0 || card.hidden) return;
    if (to >= stops.length) return end();
    index = to;
    const stop = stops[index];
    get("tour-count").textContent = `Stop ${index + 1} of ${stops.length}`;
    get("tour-title").textContent = stop.title;
    get("tour-back").disabled = index === 0;
    get("tour-next").textContent = index === stops.length - 1 ? "Finish ✓" : "Next ▶";
    card.dataset.stop = stop.id;
    get("tour-status").textContent = "";
    get("tour-status").classList.remove("sr-only");
    const hadFocus = card.contains(document.activeElement);
    get("tour-text").innerHTML = (stop.enter && stop.waiting ? stop.waiting : stop.text)(context);
    const work = (async () => stop.enter?.(context))();
    if (stop.enter) get("tour-status").textContent = "Working…";
    working = Boolean(stop.enter);
    work.finally(() => (working = false)).catch(() => {});
    pending = work.then(async () => {
      if (stops[index] !== stop) return;
      get("tour-text").innerHTML = stop.text(context);
      // Said to screen readers; on screen the card already shows it.
      get("tour-status").textContent = `Stop ${index + 1} of ${stops.length}: ${stop.title}`;
      get("tour-status").classList.add("sr-only");
      point(stop.target());
      // The view may still be growing (a lesson opening, a picture decoded, the card's own new
      // text reflowing the page): the card is placed again once it has stopped moving.
      if (target) {
        await settled(target);
        if (stops[index] !== stop || card.hidden) return;
        placeCardBy(card, target);
      }
      card.dataset.ready = stop.id;
      if (hadFocus) get("tour-next").focus(); // opening a panel moves focus; the tour keeps it
    }, (err) => {
      get("tour-status").textContent = `This stop could not be shown: ${err.message}`;
      card.dataset.ready = stop.id;
    });
    delete card.dataset.ready;
    return pending;
  }

  let opener = null;
  let kept = null; // what the learner had when the tour began: {page, largeText}
  let working = false; // a stop's work (a run) is under way
  async function start() {
    if (!card.hidden) return;
    opener = document.activeElement;
    kept = { page: window.sdlens.keep(), largeText: isLargeText() };
    const manifest = store.main?.manifest || (await selectedManifest());
    context = { manifest, prompt: starterPrompt(manifest, false), heldOutPrompt: starterPrompt(manifest, true) };
    stops = STOPS.filter((s) => !s.when || s.when(context));
    delete card.dataset.restored;
    card.hidden = false;
    get("tour-next").focus();
    await go(0);
  }

  async function end() {
    if (card.hidden) return;
    point(null);
    card.hidden = true;
    index = -1;
    delete card.dataset.stop;
    delete card.dataset.ready;
    (opener && document.contains(opener) ? opener : button).focus();
    // A run the tour started is stopped; then the learner's page comes back as it was.
    if (working) window.sdlens.stop();
    await pending.catch(() => {});
    if (kept) {
      window.sdlens.bringBack(kept.page);
      setLargeText(kept.largeText);
      kept = null;
    }
    card.dataset.restored = "true";
  }

  // Next waits for the stop's work (a run being generated) before moving on.
  get("tour-next").addEventListener("click", () => pending.then(() => go(index + 1)));
  get("tour-back").addEventListener("click", () => pending.then(() => go(index - 1)));
  get("tour-exit").addEventListener("click", end);
  mountTextSizeButton(get("tour-large"));
  card.addEventListener("keydown", (event) => {
    // Keys inside the tour are the tour's: they must not also scrub the timeline or close a panel.
    if (event.key === " ") return event.stopPropagation(); // Space presses the focused button, nothing else
    if (event.key === "Escape") end();
    else if (event.key === "ArrowRight") get("tour-next").click();
    else if (event.key === "ArrowLeft") get("tour-back").click();
    else return;
    event.preventDefault();
    event.stopPropagation();
  });
  button.addEventListener("click", start);
  return { start, end, get stop() { return stops[index]?.id ?? null; }, get count() { return stops.length; } };
}
