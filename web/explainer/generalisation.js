// The held-out pairs as a lesson. The default model's training pictures never showed some
// colour+shape pairs (its manifest lists them in `held_out_pairs`, written from
// export/shapes/scenes.py), yet it can draw them: it composes "red" and "star" from pictures of
// red circles and yellow stars. The page marks the starter prompts that ask for such a pair and
// adds the article's paragraph on generalisation, quoting the live run.

import { drawRgba } from "./colormaps.js";
import { selectedManifest } from "./starters.js";

const esc = (text) => String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

/**
 * The held-out pairs a prompt asks for: a pair counts when its colour and its shape are words of
 * the same object phrase (phrases split at commas and "and", as the training captions are built).
 */
export function heldOutPairsIn(prompt, manifest) {
  const pairs = manifest?.held_out_pairs || [];
  const phrases = String(prompt).toLowerCase().split(/,|\band\b/);
  const found = [];
  for (const phrase of phrases) {
    const words = new Set(phrase.match(/[a-z]+/g) || []);
    for (const [colour, shape] of pairs) {
      if (words.has(colour) && (words.has(shape) || words.has(`${shape}s`))
          && !found.some(([c, s]) => c === colour && s === shape)) found.push([colour, shape]);
    }
  }
  return found;
}

const NEVER_SEEN = "never seen in training";

/** Mark the starter buttons whose prompt asks for a pair the model never saw. */
function markStarters(container, manifest) {
  for (const button of container.querySelectorAll("button.starter.prompt")) {
    if (button.querySelector(".never-seen")) continue;
    const prompt = button.dataset.prompt || button.textContent;
    const pairs = heldOutPairsIn(prompt, manifest);
    if (!pairs.length) continue;
    button.dataset.prompt = prompt;
    const badge = document.createElement("span");
    badge.className = "never-seen";
    badge.textContent = ` ★ ${NEVER_SEEN}`;
    button.append(badge);
    button.classList.add("held-out");
    button.title = `The model never saw ${pairs.map(named).join(" or ")} while it learned; ` +
      "each colour and each shape it has seen only with other partners.";
  }
}

const article = (word) => (/^[aeiou]/.test(word) ? "an" : "a");
const named = ([colour, shape]) => `${article(colour)} ${colour} ${shape}`;

/**
 * Pairs the model did see that share a word with `pair`: every colour and shape of the held-out
 * list also appears with other partners in training (export/shapes/scenes.py makes sure of it),
 * so any combination of those words that is not held out was seen.
 */
function seenPartners([colour, shape], pairs) {
  const held = (c, s) => pairs.some(([hc, hs]) => hc === c && hs === s);
  const otherShape = [...new Set(pairs.map(([, s]) => s))].find((s) => s !== shape && !held(colour, s));
  const otherColour = [...new Set(pairs.map(([c]) => c))].find((c) => c !== colour && !held(c, shape));
  return [otherShape && [colour, otherShape], otherColour && [otherColour, shape]].filter(Boolean);
}

function paragraph(run) {
  const manifest = run?.manifest;
  const pairs = manifest?.held_out_pairs || [];
  if (!pairs.length) return "";
  const asked = run?.final ? heldOutPairsIn(run.settings.prompt, manifest) : [];
  const example = asked[0] || pairs.find(([c, s]) => c === "red" && s === "star") || pairs[0];
  const partners = seenPartners(example, pairs);
  const knows = partners.length === 2
    ? `It did see ${named(partners[0])} and ${named(partners[1])}, so it knows “${example[0]}” and it knows
       “${example[1]}”, each with other partners.`
    : `It saw “${example[0]}” and “${example[1]}” only with other partners.`;
  const yours = asked.length
    ? `<div class="yours"><canvas class="drawn" aria-label="the image this run drew"></canvas>
       <p>Your prompt, “${esc(run.settings.prompt)}”, asks for ${esc(asked.map(named).join(" and "))}:
       a picture this model has never seen. Here is what it drew: if the colour and the shape are both right, it
       combined two things it learned separately. (Try a few seeds: it does not always manage.)</p></div>`
    : `<p class="yours">Try it: ask for one of these pairs (the starter marked “${NEVER_SEEN}” does), then compare
       it with a pair the model did see.</p>`;
  return `<h4>4. Drawing what it never saw</h4>
    <p>A model that only copied its training pictures could never draw anything new. This one was trained on pictures of
    shapes, but some colour+shape pairs were <b>left out on purpose</b>: it never saw ${esc(pairs.map(named).join(", "))}.
    ${knows} Drawing ${named(example)} means putting the two together: this is called <b>generalisation</b>, and it is
    why Stable Diffusion can draw things nobody ever photographed, such as “an astronaut riding a horse on the moon”.</p>
    ${yours}`;
}

export function mountGeneralisation(container, starters, store) {
  const render = () => {
    container.innerHTML = paragraph(store.main);
    const drawn = container.querySelector("canvas.drawn");
    if (drawn) drawRgba(drawn, store.main.final); // the run's own image, next to the words about it
  };
  // The starters on display are those of the selected model (starters.js fetches its manifest).
  let marking = Promise.resolve();
  const mark = () => {
    marking = marking.then(selectedManifest).then((manifest) => manifest && markStarters(starters, manifest), () => {});
  };
  // The starters redraw themselves (starters.js) when the model changes: mark each new set.
  new MutationObserver(mark).observe(starters, { childList: true, subtree: true });
  for (const type of ["run", "finish"]) store.addEventListener(type, () => { render(); mark(); });
  render();
  mark();
  return { render };
}
