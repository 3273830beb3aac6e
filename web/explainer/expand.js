// Expand in place: opening a component grows its box out of the overview diagram until it fills
// the diagram, and its sub-blocks appear inside (tokenizer → text encoder; UNet → guidance →
// scheduler, looping; VAE decoder), as in the original Diffusion Explainer. Each sub-block is a
// button that brings its part of the panel below into view. Closing the panel (✕ or Esc) shrinks
// it back into its box. The diagram is overview.js's; this module only lays a box over it.

import { displayed } from "./displayed.js";
import { COMPONENTS } from "./overview.js";

const d3 = globalThis.d3;
const COMPONENT_TITLES = Object.fromEntries(COMPONENTS.map((c) => [c.id, c.title]));

/** The sub-blocks of each component; `shows` is the part of the open panel each one explains. */
export function subBlocks(id, run) {
  const m = run?.manifest;
  const f = m?.vae_scale_factor;
  const latent = m ? `${m.latent_channels}×${m.defaults.height / f}×${m.defaults.width / f}` : "latent";
  const tokens = m ? m.tokenizer.max_length : "77";
  const g = run ? Number(run.settings.guidance) : null;
  const blocks = {
    text: [
      { name: "Tokenizer", note: `words → ${tokens} token ids`, shows: "ol.tokens" },
      { name: "Text encoder", note: m ? `ids → ${tokens}×${m.text_hidden_size} numbers` : "ids → vectors", shows: ".labelled-heatmap" },
    ],
    refiner: [
      { name: "UNet", note: g > 1 ? "predicts the noise ε, twice" : "predicts the noise ε", shows: ".tensor-pictures" },
      { name: "Guidance", note: g > 1 ? `ε = ε_u + ${g}·(ε_c − ε_u)` : `g = ${g ?? "?"}: off`, shows: ".update-line" },
      { name: "Scheduler", note: `x_t → x_t−1 (${run?.settings.scheduler ?? "…"})`, shows: ".few-rows" },
    ],
    upscaler: [
      { name: "VAE decoder", note: m ? `${latent} → 3×${m.defaults.height}×${m.defaults.width}` : "latent → pixels", shows: "figure.pic.result" },
    ],
  };
  return blocks[id];
}

export function mountExpand(overview, detail, store) {
  const svg = d3.select(overview).select("svg");
  overview.classList.add("expandable");
  // The grown box is HTML laid over the diagram, so its sub-blocks keep a legible size at any
  // width (the diagram's SVG text shrinks with the screen) and are real buttons.
  const box = document.createElement("div");
  box.className = "expanded-box";
  box.hidden = true;
  box.setAttribute("role", "group");
  overview.append(box);
  let open = null;

  function bringIntoView(shows) {
    const target = typeof shows === "function" ? shows(detail) : detail.querySelector(shows);
    if (!target) return;
    if (target.tagName === "DETAILS") target.open = true;
    for (let fold = target.closest("details"); fold; fold = fold.parentElement?.closest("details")) fold.open = true;
    target.scrollIntoView({ block: "center", behavior: "smooth" });
    target.classList.add("flash");
    setTimeout(() => target.classList.remove("flash"), 1200);
  }

  function fill(id) {
    const run = store.main;
    const blocks = subBlocks(id, run);
    const title = COMPONENT_TITLES[id] || id;
    box.setAttribute("aria-label", `${title}, opened: its parts`);
    box.innerHTML = `<div class="expanded-head"><h3 class="sr-only"></h3><button type="button" class="expanded-back">⟵ overview (Esc)</button></div>
      <ol class="sub-blocks"></ol><p class="sub-loop" hidden></p>`;
    box.querySelector("h3").textContent = title;
    // The other two parts stay on the stage, in small, in the order data flows: one click opens one.
    const parts = document.createElement("ol");
    parts.className = "expanded-parts";
    parts.setAttribute("aria-label", "the model's three parts");
    for (const c of COMPONENTS) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "expanded-part";
      b.textContent = c.title;
      if (c.id === id) b.setAttribute("aria-current", "true");
      else b.addEventListener("click", () => overview.querySelector(`g.component[data-id="${c.id}"]`)?.dispatchEvent(new MouseEvent("click")));
      li.append(b);
      parts.append(li);
    }
    box.querySelector(".expanded-head h3").after(parts); // (the parts row, the open one marked, is the heading people see)
    box.querySelector(".expanded-back").addEventListener("click", () => detail.querySelector(".close")?.click());
    const list = box.querySelector(".sub-blocks");
    blocks.forEach((b) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "sub-block";
      button.innerHTML = `<span class="sub-name"></span><span class="sub-note"></span>`;
      button.querySelector(".sub-name").textContent = b.name;
      button.querySelector(".sub-note").textContent = b.note;
      button.setAttribute("aria-label", `${b.name}: ${b.note}. Show it below`);
      button.addEventListener("click", () => bringIntoView(b.shows));
      li.append(button);
      list.append(li);
    });
    if (id === "refiner") {
      const loop = box.querySelector(".sub-loop");
      loop.hidden = false;
      loop.textContent = `↺ the scheduler's new latent goes back into the UNet for the next timestep`
        + (run ? ` (${run.steps.length} times in this run)` : "");
    }
  }

  /** Where an element is, in CSS pixels from the overview's padding box (what `absolute` uses). */
  function relative(element) {
    const base = overview.getBoundingClientRect();
    const r = element.getBoundingClientRect();
    return { left: r.left - base.left - overview.clientLeft, top: r.top - base.top - overview.clientTop,
      width: r.width, height: r.height };
  }
  const sourceRect = (id) => relative(overview.querySelector(`g.component[data-id="${id}"] rect`));

  const px = (r) => ({ left: `${r.left}px`, top: `${r.top}px`, width: `${r.width}px`, height: `${r.height}px` });
  let animation = null;

  // Growing and shrinking animate an absolutely placed box; once grown, the box sits in the page's
  // flow instead of the diagram ("settled"), so it follows any later change of width.
  function settle(height) {
    animation?.cancel();
    animation = null;
    svg.style("display", "none");
    overview.style.minHeight = "";
    box.style.cssText = `min-height:${height}px`;
    box.classList.add("settled");
  }

  function expand(id) {
    if (!overview.querySelector(`g.component[data-id="${id}"]`)) return;
    const again = open !== null;
    open = id;
    svg.classed("expanded", true);
    svg.selectAll("g.component").classed("open", (d) => d.id === id);
    fill(id);
    box.hidden = false;
    if (again) return; // already grown: new contents only
    const from = sourceRect(id);
    const area = relative(svg.node()); // the diagram's whole area ...
    box.classList.remove("settled");
    box.style.cssText = `left:${area.left}px;top:${area.top}px;width:${area.width}px;visibility:hidden`;
    // ... or more, where the parts need more room (stacked, on a phone).
    const to = { ...area, height: Math.max(area.height, box.offsetHeight) };
    box.style.cssText = "";
    overview.style.minHeight = `${to.height}px`;
    displayed.expand = { id, from, to }; // for the tests: where the growing started and ended
    animation?.cancel();
    animation = box.animate([px(from), px(to)], { duration: 450, easing: "cubic-bezier(.65,0,.35,1)", fill: "forwards" });
    animation.onfinish = () => settle(area.height);
  }

  function collapse() {
    if (!open) return;
    const was = open;
    open = null;
    const from = relative(box);
    box.classList.remove("settled");
    box.style.cssText = "";
    svg.style("display", null);
    overview.style.minHeight = `${from.height}px`;
    svg.classed("expanded", false);
    svg.selectAll("g.component").classed("open", false);
    const to = sourceRect(was);
    animation?.cancel();
    animation = box.animate([px(from), px(to)], { duration: 350, easing: "cubic-bezier(.65,0,.35,1)", fill: "forwards" });
    animation.onfinish = () => {
      animation.cancel();
      animation = null;
      box.hidden = true;
      overview.style.minHeight = "";
    };
  }

  svg.selectAll("g.component").attr("data-id", (d) => d.id);
  detail.addEventListener("panel-open", (event) => expand(event.detail.id));
  detail.addEventListener("panel-close", collapse);
  // New numbers (another run) in the sub-blocks' notes.
  for (const type of ["finish", "run"]) store.addEventListener(type, () => open && fill(open));
  return { expand, collapse, get open() { return open; } };
}
