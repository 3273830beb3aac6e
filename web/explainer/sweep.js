// Guidance sweep: the same prompt and seed at several guidance scales, side by side. Guidance is
// the knob that trades variety for obedience to the prompt; seeing one image per value, all from
// the same noise, shows what it does better than any description.

import { formSettings, isOn } from "./settings.js";
import { drawRgba } from "./colormaps.js";

export const DEFAULT_VALUES = "0, 1, 3, 7.5, 15";

/** "0, 1, 7.5" → [0, 1, 7.5]; throws with a message naming the first bad entry. */
export function parseValues(text) {
  const parts = text.split(/[\s,;]+/).filter(Boolean);
  if (!parts.length) throw new Error("give at least one guidance value");
  return parts.map((part) => {
    const value = Number(part);
    if (!Number.isFinite(value) || value < 0) throw new Error(`“${part}” is not a guidance value (a number ≥ 0)`);
    return value;
  });
}

export function mountSweep(container, store) {
  if (!container || container.dataset.mounted) return;
  container.dataset.mounted = "sweep";
  container.classList.add("sweep");
  container.innerHTML = `
    <h2>Guidance sweep</h2>
    <p class="hint">The same prompt and seed at several guidance scales; higher values follow the prompt
      harder. Any g ≤ 1 switches guidance off, as in diffusers: the network runs once per step with your
      prompt, so g = 0 does not ignore the prompt, and every g ≤ 1 gives the same image as g = 1.</p>
    <div class="sweep-controls">
      <label>Guidance values
        <input id="sweep-values" type="text" value="${DEFAULT_VALUES}" aria-describedby="sweep-message">
      </label>
      <button type="button" id="sweep-run">Run sweep</button>
    </div>
    <span id="sweep-message" class="field-message" role="status"></span>
    <div id="sweep-images" class="sweep-images" aria-label="one image per guidance value"></div>`;
  const button = container.querySelector("#sweep-run");
  const message = container.querySelector("#sweep-message");
  button.addEventListener("click", async () => {
    let values;
    try {
      values = parseValues(container.querySelector("#sweep-values").value);
    } catch (err) {
      message.textContent = err.message;
      return;
    }
    message.textContent = "";
    button.disabled = true;
    try {
      await runSweep(container.querySelector("#sweep-images"), values, message);
    } catch (err) {
      message.textContent = `The sweep stopped: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  });
}

/** One generation per value, one after the other (only one can run at a time). */
async function runSweep(grid, values, message) {
  const settings = formSettings();
  // A slot per value first, so the layout is final from the start and images fill in as they come.
  const slots = values.map((g) => {
    const figure = document.createElement("figure");
    figure.className = "pending";
    const canvas = document.createElement("canvas");
    canvas.setAttribute("aria-label", `guidance ${g}`);
    const caption = document.createElement("figcaption");
    const off = g <= 1 && !(isOn(settings.formula_below_one) && g < 1);
    caption.textContent = off ? `g = ${g} (off: same as g = 1)` : `g = ${g}`;
    figure.append(canvas, caption);
    return figure;
  });
  grid.replaceChildren(...slots);
  for (const [i, g] of values.entries()) {
    message.textContent = `Generating ${i + 1} of ${values.length} (g = ${g})…`;
    // A side run: the generator's own image, strip and form keep showing the main run.
    const result = await window.sdlens.generate({ ...settings, guidance: String(g) }, { show: false, label: `Sweep, g = ${g}` });
    if (result.cancelled) {
      message.textContent = "Stopped.";
      slots.slice(i).forEach((slot) => slot.remove());
      return;
    }
    drawRgba(slots[i].querySelector("canvas"), result);
    slots[i].classList.remove("pending");
  }
  message.textContent = "";
}

