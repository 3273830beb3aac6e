// "Start from a picture": a file picker, drag and drop, paste, and a sketch pad, all writing one
// picture at the model's size; and the strength slider with what it means in steps. The page
// (app.js) asks `settings()` for {init_image, strength} when the picture is switched on.

import { decodePicture, PictureError, toInitImage } from "./decode.js";
import { COLOURS, SketchPad, SIZES } from "./sketch.js";
import { strengthLine } from "./strength.js";

export { PictureError, toInitImage };

/**
 * @param container  the <div id="start-picture"> below the prompt
 * @param target     () => {width, height}: the current model's picture size (or null while loading)
 * @param steps      () => the step count in the form
 */
export function mountPicture(container, { target, steps }) {
  container.innerHTML = `
    <details class="start-picture" id="picture-details">
      <summary>Start from a picture <span class="picture-summary" id="picture-summary">(img2img)</span></summary>
      <label class="check"><input type="checkbox" id="picture-on"> Start this run from the picture below, not from pure noise</label>
      <div class="picture-source" id="picture-drop">
        <label class="picture-file-button">Choose a picture…
          <input type="file" id="picture-file" accept="image/*"></label>
        <span class="note">or drop one here, or paste one (Ctrl+V / ⌘V).</span>
      </div>
      <p class="note" id="picture-note" role="status"></p>
      <span class="field-message" id="init_image-message" role="alert"></span>
      <div class="sketch">
        <canvas id="sketch-pad" width="64" height="64" aria-label="sketch pad: the picture the run starts from"></canvas>
        <div class="sketch-tools">
          <div class="sketch-colours" role="radiogroup" aria-label="brush colour"></div>
          <div class="sketch-sizes" role="radiogroup" aria-label="brush size"></div>
          <div class="sketch-actions">
            <button type="button" id="sketch-fill" title="Fill the whole pad with the brush colour">Fill</button>
            <button type="button" id="sketch-undo" disabled>Undo</button>
            <button type="button" id="sketch-clear">Clear</button>
          </div>
        </div>
      </div>
      <label class="strength">Strength
        <input type="range" id="strength" min="0.05" max="1" step="0.05" value="0.6" aria-describedby="strength-line">
        <output id="strength-value" for="strength">0.6</output>
      </label>
      <p class="note" id="strength-line" role="status"></p>
      <span class="field-message" id="strength-message" role="status"></span>
    </details>`;
  const $ = (id) => container.querySelector(`#${id}`);
  const details = $("picture-details");
  const on = $("picture-on");
  const pad = new SketchPad($("sketch-pad"));
  const message = $("init_image-message");
  const note = $("picture-note");

  const say = (text, error = false) => {
    message.textContent = error ? text : "";
    message.className = error ? "field-message error" : "field-message";
    if (!error) note.textContent = text;
  };
  const fitModel = () => {
    const size = target();
    if (size && (size.width !== pad.width || size.height !== pad.height)) {
      const had = pad.canUndo;
      pad.resize(size.width, size.height);
      note.textContent = had ? `This model works at ${size.width}×${size.height}: the pad starts again, blank, at that size.` : "";
    }
    return size;
  };
  const updateStrength = () => {
    $("strength-value").textContent = $("strength").value;
    $("strength-line").textContent = strengthLine(steps(), $("strength").value);
    $("picture-summary").textContent = on.checked ? `(on, strength ${$("strength").value})` : "(img2img)";
    $("sketch-undo").disabled = !pad.canUndo;
  };

  // Brush colours and sizes
  for (const [name, rgb] of COLOURS) {
    const swatch = document.createElement("button");
    swatch.type = "button";
    swatch.className = "swatch";
    swatch.style.background = `rgb(${rgb.join(",")})`;
    swatch.title = swatch.ariaLabel = name;
    swatch.dataset.colour = name;
    swatch.setAttribute("role", "radio");
    swatch.addEventListener("click", () => choose(container.querySelectorAll(".swatch"), swatch, () => (pad.colour = rgb)));
    container.querySelector(".sketch-colours").append(swatch);
  }
  for (const size of SIZES) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "brush-size";
    button.textContent = `${size}px`;
    button.title = `brush ${size} pixel${size === 1 ? "" : "s"} across (in the model's pixels)`;
    button.dataset.size = size;
    button.setAttribute("role", "radio");
    button.addEventListener("click", () => choose(container.querySelectorAll(".brush-size"), button, () => (pad.size = size)));
    container.querySelector(".sketch-sizes").append(button);
  }
  choose(container.querySelectorAll(".swatch"), container.querySelector(".swatch"), () => {});
  choose(container.querySelectorAll(".brush-size"), container.querySelector('[data-size="5"]'), () => {});

  $("sketch-fill").addEventListener("click", () => pad.fill());
  $("sketch-undo").addEventListener("click", () => pad.undo());
  $("sketch-clear").addEventListener("click", () => pad.clear());
  pad.addEventListener("change", ({ detail }) => {
    // Drawing means starting from the drawing.
    if (detail.how === "stroke" || detail.how === "fill") {
      on.checked = true;
      if (!note.textContent.includes("drawn")) note.textContent = `Drawn on the sketch pad (${pad.width}×${pad.height}, the model's size).`;
    }
    updateStrength();
  });
  pad.canvas.addEventListener("pointerdown", fitModel, { capture: true });
  on.addEventListener("change", updateStrength);
  $("strength").addEventListener("input", updateStrength);
  for (const type of ["input", "change"]) document.getElementById("steps")?.addEventListener(type, updateStrength);
  details.addEventListener("toggle", () => {
    fitModel();
    updateStrength();
  });

  /** A file, a drop or a paste: on success the pad shows it and the run will start from it; on
   * failure only the message changes (the pad, the prompt, the settings and the last run stay). */
  async function take(file) {
    details.open = true;
    const size = fitModel();
    if (!size) return say("Wait for the model to load: its size decides the picture's.", true);
    try {
      const picture = await decodePicture(file, size, file?.name || "");
      pad.load(picture);
      on.checked = true;
      say(picture.note);
    } catch (err) {
      if (!(err instanceof PictureError)) throw err;
      say(err.message, true);
    }
    updateStrength();
  }
  const api = { take, pad, details };
  $("picture-file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (file) await take(file);
    event.target.value = ""; // the same file again is a new choice
  });
  const drop = container;
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("dropping");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("dropping"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("dropping");
    const file = event.dataTransfer?.files?.[0];
    if (file) take(file);
    else say("That was not a file: drop a picture file (or paste one).", true);
  });
  // A paste with a picture in it, anywhere on the page; a paste of text goes where it always goes.
  document.addEventListener("paste", (event) => {
    const file = [...(event.clipboardData?.files || [])][0];
    if (!file) return;
    // Text copied from a web page can come with its pictures: in a text field, the text wins.
    const typing = event.target.closest?.("input, textarea, [contenteditable]");
    if (typing && event.clipboardData.types.includes("text/plain")) return;
    event.preventDefault();
    take(file);
  });

  /** {init_image, strength} for a run, or {} when the run starts from noise. */
  api.settings = () => {
    if (!on.checked) return {};
    fitModel();
    return { init_image: pad.picture(), strength: Number($("strength").value) };
  };
  /** Show the picture and strength a run used (a run started by the API, say). */
  api.reflect = (settings) => {
    if (settings.init_image) {
      fitModel();
      const { width, height, rgba } = settings.init_image;
      if (width === pad.width && height === pad.height && !samePixels(rgba, pad.pixels)) pad.load({ width, height, rgba });
      on.checked = true;
      if (settings.strength !== undefined) $("strength").value = settings.strength;
    } else {
      on.checked = false;
    }
    updateStrength();
  };
  api.update = updateStrength;
  updateStrength();
  return api;
}

function choose(all, chosen, apply) {
  for (const b of all) b.setAttribute("aria-checked", String(b === chosen));
  apply();
}

function samePixels(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
