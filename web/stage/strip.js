// The step strip: one small picture per step of the current run (the model's guess x̂₀, as the
// worker sent it with the step), the selected step marked. Clicking a picture selects its step.

import { drawRgba } from "../explainer/colormaps.js";

export function mountStrip(container, store, previewLabel, previewKind) {
  const figures = [];

  function add(step) {
    const figure = document.createElement("figure");
    const canvas = document.createElement("canvas");
    drawRgba(canvas, step.preview);
    const caption = document.createElement("figcaption");
    caption.textContent = `${step.index + 1}`;
    // (a first visit shows the linear map until each step's x̂₀ is decoded, after the final image)
    const linear = previewKind() === "linear" ? previewLabel()
      : "a linear latent→RGB map (an approximation, until this step's x̂₀ is decoded)";
    const by = step.preview.source === "linear" ? linear : `x̂₀ decoded by ${previewLabel()}`;
    figure.title = `step ${step.index + 1}, t = ${Math.round(step.timestep)}: ${by}`;
    figure.dataset.index = step.index;
    figure.addEventListener("click", () => store.select(step.index));
    figure.append(canvas, caption);
    container.append(figure);
    figures[step.index] = figure;
  }

  function mark() {
    for (const figure of container.children) {
      const selected = Number(figure.dataset.index) === store.selected;
      figure.classList.toggle("selected", selected);
      if (selected) figure.setAttribute("aria-current", "step");
      else figure.removeAttribute("aria-current");
    }
  }

  function redraw() {
    container.replaceChildren();
    figures.length = 0;
    for (const step of store.main?.steps || []) add(step);
    mark();
  }

  store.addEventListener("run", ({ detail }) => detail.key === "main" && redraw());
  // A first visit's step pictures, decoded after its final image, replace the quick ones.
  store.addEventListener("pictures", ({ detail }) => detail.key === "main" && redraw());
  store.addEventListener("finish", ({ detail }) => detail.key === "main" && mark());
  store.addEventListener("step", ({ detail }) => {
    if (detail.key !== "main") return;
    add(store.main.steps[store.main.steps.length - 1]);
    mark();
  });
  store.addEventListener("select", mark);
  redraw();
}
