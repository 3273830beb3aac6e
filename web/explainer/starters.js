// Starter prompts: a model only knows what it was trained on (the default model draws shapes),
// so its manifest suggests prompts that work, and pairs of prompts worth comparing.

import { announceCompare, setCompare } from "./compare.js";

const $ = (id) => document.getElementById(id);

/** The selected model's manifest, fetched from the server (the page's copy is private to app.js). */
export async function selectedManifest() {
  const models = await (await fetch("api/models.json")).json();
  const id = $("model")?.value;
  const model = models.find((m) => m.id === id) || models.find((m) => m.default) || models[0];
  return model ? (await fetch(model.manifest)).json() : null;
}

export function mountStarters(container, store) {
  if (!container || container.dataset.mounted) return;
  container.dataset.mounted = "starters";
  container.classList.add("starters");
  let shown = null; // the manifest on display, so that repeated events redraw nothing
  const show = (manifest) => {
    if (!manifest || manifest === shown) return;
    shown = manifest;
    render(container, manifest);
  };
  const refresh = () => selectedManifest().then(show, () => {}); // no starters is fine
  $("model")?.addEventListener("change", refresh);
  store.addEventListener("run", () => show(store.main?.manifest));
  refresh();
}

function render(container, manifest) {
  const prompts = manifest.starter_prompts || [];
  const pairs = manifest.prompt_pairs || [];
  container.replaceChildren();
  if (!prompts.length && !pairs.length) return;
  if (prompts.length) container.append(group("Try", prompts.map((prompt) => starterButton(prompt, () => fill(prompt)))));
  if (pairs.length) {
    container.append(group("Compare", pairs.map(([a, b]) => starterButton(`${a} ⇄ ${b}`, () => fill(a, b), "pair"))));
  }
}

function group(title, buttons) {
  const div = document.createElement("div");
  div.className = "starter-group";
  div.setAttribute("role", "group");
  div.setAttribute("aria-label", `${title}: starter prompts`);
  const label = document.createElement("span");
  label.className = "starter-title";
  label.textContent = title;
  div.append(label, ...buttons);
  return div;
}

function starterButton(text, onClick, kind = "prompt") {
  const b = document.createElement("button");
  b.type = "button"; // inside the form: must not submit it
  b.className = `starter ${kind}`;
  b.textContent = text;
  b.addEventListener("click", onClick);
  return b;
}

/** Put a prompt (and a second one to compare it with) into the form. */
function fill(prompt, compare) {
  $("starter-menu")?.removeAttribute("open"); // the menu closes on a choice, like any menu
  const field = $("prompt");
  field.value = prompt;
  field.dispatchEvent(new Event("input", { bubbles: true }));
  if (compare === undefined) return field.focus();
  setCompare("prompt", compare);
  announceCompare(); // B went to the Compare view, far down the page: show it
}
