// Larger text for a projector (A+), on and off from the header and from the guided tour. One
// state, on <html class="projector">; every control that shows it follows the same event.

const EVENT = "sdlens:text-size";

export const isLargeText = () => document.documentElement.classList.contains("projector");

export function setLargeText(on) {
  document.documentElement.classList.toggle("projector", Boolean(on));
  document.dispatchEvent(new CustomEvent(EVENT, { detail: { large: Boolean(on) } }));
}

/** A toggle button for the larger text: aria-pressed says whether it is on; its face shows what
 * a press does (A+ makes the text larger, A− makes it normal again). */
export function mountTextSizeButton(button) {
  if (!button) return;
  const face = document.createElement("span");
  face.setAttribute("aria-hidden", "true");
  const name = document.createElement("span");
  name.className = "sr-only";
  name.textContent = "Larger text";
  button.replaceChildren(face, name);
  const show = () => {
    const large = isLargeText();
    face.textContent = large ? "A−" : "A+";
    button.setAttribute("aria-pressed", String(large));
    button.title = large ? "Back to the normal text size" : "Larger text, for a projector";
  };
  button.addEventListener("click", () => setLargeText(!isLargeText()));
  document.addEventListener(EVENT, show);
  show();
}
