// The held-out pairs as a lesson. A small model's training pictures never showed some pairs
// (its manifest lists them in `held_out_pairs`, written from the world's scenes.py: colour+shape
// for the shapes world, object+place for the objects world), yet it can draw them: it composes
// "red" and "star" from pictures of red circles and yellow stars. The page marks the starter
// prompts that ask for such a pair and adds the article's paragraph on generalisation, quoting
// the live run.

import { heldOutPairsIn, pairNamed, pairParts } from "../held_out.js";
import { drawRgba } from "./colormaps.js";
import { selectedManifest } from "./starters.js";

const esc = (text) => String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

const NEVER_SEEN = "never seen in training";

/** Mark the starter buttons whose prompt asks for a pair the model never saw. */
function markStarters(container, manifest) {
  const parts = pairParts(manifest);
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
    button.title = `The model never saw ${pairs.map((pair) => pairNamed(pair, manifest)).join(" or ")} while it learned; ` +
      `each ${parts.first} and each ${parts.second} it has seen only with other partners.`;
  }
}

/**
 * Pairs the model did see that share a half with `pair`: every half of the held-out list also
 * appears with other partners in training (the world's scenes.py makes sure of it), so any
 * combination of those halves that is not held out was seen.
 */
function seenPartners([first, second], pairs) {
  const held = (a, b) => pairs.some(([ha, hb]) => ha === a && hb === b);
  const otherSecond = [...new Set(pairs.map(([, b]) => b))].find((b) => b !== second && !held(first, b));
  const otherFirst = [...new Set(pairs.map(([a]) => a))].find((a) => a !== first && !held(a, second));
  return [otherSecond && [first, otherSecond], otherFirst && [otherFirst, second]].filter(Boolean);
}

function paragraph(run) {
  const manifest = run?.manifest;
  const pairs = manifest?.held_out_pairs || [];
  if (!pairs.length) return "";
  const asked = run?.final ? heldOutPairsIn(run.settings.prompt, manifest) : [];
  const example = asked[0] || pairs.find(([c, s]) => c === "red" && s === "star") || pairs[0];
  const partners = seenPartners(example, pairs);
  const named = (pair) => pairNamed(pair, manifest);
  const parts = pairParts(manifest);
  const knows = partners.length === 2
    ? `It did see ${named(partners[0])} and ${named(partners[1])}, so it knows “${example[0]}” and it knows
       “${example[1]}”, each with other partners.`
    : `It saw “${example[0]}” and “${example[1]}” only with other partners.`;
  const yours = asked.length
    ? `<div class="yours"><canvas class="drawn" aria-label="the image this run drew"></canvas>
       <p>Your prompt, “${esc(run.settings.prompt)}”, asks for ${esc(asked.map(named).join(" and "))}:
       a picture this model has never seen. Here is what it drew: if the ${parts.first} and the ${parts.second} are both right, it
       combined two things it learned separately. (Try a few seeds: it does not always manage.)</p></div>`
    : `<p class="yours">Try it: ask for one of these pairs (the starter marked “${NEVER_SEEN}” does), then compare
       it with a pair the model did see.</p>`;
  return `<h4>4. Drawing what it never saw</h4>
    <p>A model that only copied its training pictures could never draw anything new. This one was trained on pictures of
    ${parts.world}, but some ${parts.first}+${parts.second} pairs were <b>left out on purpose</b>: it never saw ${esc(pairs.map(named).join(", "))}.
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
