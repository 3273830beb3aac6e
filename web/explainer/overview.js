// Level 1: the three parts of Stable Diffusion as a diagram, with the data flowing between them.
// Shapes are the live model's. Clicking a part opens its level-2 panel (detail.js).

const d3 = globalThis.d3;

export const COMPONENTS = [
  { id: "text", title: "Text Representation Generator", parts: "tokenizer → text encoder" },
  { id: "refiner", title: "Image Representation Refiner", parts: "UNet + guidance + scheduler" },
  { id: "upscaler", title: "Image Upscaler", parts: "VAE decoder" },
];

export function shapes(manifest) {
  const f = manifest.vae_scale_factor;
  const { width, height } = manifest.defaults;
  const tokens = manifest.tokenizer.max_length;
  return {
    prompt: "your prompt",
    text: `${tokens}×${manifest.text_hidden_size}`,
    latent: `${manifest.latent_channels}×${height / f}×${width / f}`,
    image: `3×${height}×${width}`,
  };
}

// Two layouts of the same diagram: left to right on a wide screen, top to bottom on a phone, so
// that its labels stay readable (a 900-unit-wide drawing shrunk to 390 px is not).
const LAYOUTS = {
  wide: {
    viewBox: [900, 200],
    top: 62, // nothing is drawn above the arrows' labels: the stage keeps that height for the picture
    boxes: [{ x: 105, y: 45, w: 200, h: 90 }, { x: 365, y: 45, w: 230, h: 90 }, { x: 655, y: 45, w: 150, h: 90 }],
    arrows: [[15, 90, 105, 90], [305, 90, 365, 90], [595, 90, 655, 90], [805, 90, 895, 90]],
    label: (x1, y1, x2, y2) => ({ x: (x1 + x2) / 2, y: y1 - 10, anchor: "middle", room: x2 - x1 }),
    loop: "M 540 135 C 540 185, 420 185, 420 135",
    loopLabel: { x: 480, y: 195, anchor: "middle" },
  },
  narrow: {
    viewBox: [360, 450],
    boxes: [{ x: 30, y: 40, w: 300, h: 80 }, { x: 30, y: 180, w: 300, h: 80 }, { x: 30, y: 320, w: 300, h: 80 }],
    arrows: [[180, 0, 180, 40], [180, 120, 180, 180], [180, 260, 180, 320], [180, 400, 180, 450]],
    label: (x1, y1, x2, y2) => ({ x: x1 - 10, y: (y1 + y2) / 2 + 4, anchor: "end", room: 140 }),
    loop: "M 330 245 C 358 245, 358 195, 330 195",
    loopLabel: { x: 196, y: 294, anchor: "start" },
  },
};

/** Shrink an SVG text's font until it fits `room` units (a model's long shape, a long part list). */
function fit(text, room) {
  text.each(function () {
    this.style.fontSize = "";
    const length = this.getComputedTextLength();
    const size = parseFloat(getComputedStyle(this).fontSize);
    if (length > room && length > 0) this.style.fontSize = `${Math.max(8, (size * room) / length).toFixed(1)}px`;
  });
}

export function mountOverview(container, store, onOpen) {
  const narrowQuery = matchMedia("(max-width: 600px)");
  let svg, arrowLabels, loopLabel, dot, layout;

  function build() {
    layout = LAYOUTS[narrowQuery.matches ? "narrow" : "wide"];
    // The same <svg> element across layouts: other modules (expand.js) hold on to it.
    svg = d3.select(container).select("svg");
    if (svg.empty()) svg = d3.select(container).append("svg");
    svg.selectAll("*").remove();
    svg.attr("viewBox", `0 ${layout.top || 0} ${layout.viewBox[0]} ${layout.viewBox[1] - (layout.top || 0)}`).attr("role", "img")
      .classed("narrow", narrowQuery.matches).classed("wide", !narrowQuery.matches)
      .attr("aria-label", "Stable Diffusion: text representation, image representation refiner, image upscaler");
    const boxes = layout.boxes.map((b, i) => ({ ...b, ...COMPONENTS[i] }));
    const arrows = layout.arrows.map(([x1, y1, x2, y2], i) => ({ x1, y1, x2, y2, ...[{ label: "prompt" }, { key: "text" },
      { key: "latent" }, { key: "image" }][i] }));
    svg.append("defs").append("marker").attr("id", "arrow").attr("viewBox", "0 0 10 10").attr("refX", 9)
      .attr("refY", 5).attr("markerWidth", 7).attr("markerHeight", 7).attr("orient", "auto")
      .append("path").attr("d", "M0,0 L10,5 L0,10 z").attr("fill", "#5a6572");
    svg.selectAll("line.flow").data(arrows).join("line").attr("class", "flow")
      .attr("x1", (d) => d.x1).attr("y1", (d) => d.y1)
      .attr("x2", (d) => d.x2 - Math.sign(d.x2 - d.x1) * 2).attr("y2", (d) => d.y2 - Math.sign(d.y2 - d.y1) * 2)
      .attr("stroke", "#5a6572").attr("stroke-width", 2).attr("marker-end", "url(#arrow)");
    arrowLabels = svg.selectAll("text.shape").data(arrows).join("text").attr("class", "shape")
      .each(function (d) {
        const at = layout.label(d.x1, d.y1, d.x2, d.y2);
        Object.assign(d, { room: at.room });
        d3.select(this).attr("x", at.x).attr("y", at.y).attr("text-anchor", at.anchor);
      });

    // The refiner loops: its output latent goes back in for the next timestep.
    svg.append("path").attr("d", layout.loop).attr("fill", "none")
      .attr("stroke", "#2f5d9b").attr("stroke-width", 2).attr("marker-end", "url(#arrow)");
    loopLabel = svg.append("text").attr("x", layout.loopLabel.x).attr("y", layout.loopLabel.y)
      .attr("text-anchor", layout.loopLabel.anchor).attr("class", "loop");

    const groups = svg.selectAll("g.component").data(boxes).join("g").attr("class", "component").attr("data-id", (d) => d.id)
      .attr("tabindex", 0).attr("role", "button")
      .attr("aria-label", (d) => `open ${d.title}`)
      .on("click", (_, d) => onOpen(d.id))
      .on("keydown", (event, d) => (event.key === "Enter" || event.key === " ") && (event.preventDefault(), onOpen(d.id)));
    groups.append("rect").attr("x", (d) => d.x).attr("y", (d) => d.y).attr("width", (d) => d.w)
      .attr("height", (d) => d.h).attr("rx", 10);
    groups.append("text").attr("x", (d) => d.x + d.w / 2).attr("y", (d) => d.y + d.h / 2 - 7).attr("text-anchor", "middle")
      .attr("class", "title").text((d) => d.title.split(" ").slice(0, 2).join(" "));
    groups.append("text").attr("x", (d) => d.x + d.w / 2).attr("y", (d) => d.y + d.h / 2 + 11).attr("text-anchor", "middle")
      .attr("class", "title").text((d) => d.title.split(" ").slice(2).join(" "));
    groups.append("text").attr("x", (d) => d.x + d.w / 2).attr("y", (d) => d.y + d.h / 2 + 31).attr("text-anchor", "middle")
      .attr("class", "parts").text((d) => d.parts);
    groups.selectAll("text").filter(function () { return !this.textContent; }).remove(); // a one-line title
    refit();

    // Data flowing: a dot runs along each arrow in turn while a run is going on or playing.
    dot = svg.append("circle").attr("r", 5).attr("fill", "#f0b429").attr("opacity", 0);
    update();
  }

  /** Fit every label to its room; text that is not laid out (the diagram hidden while a part is
   * open) measures 0, so this runs again whenever the diagram gets a size. */
  function refit() {
    svg.selectAll("g.component text").each(function () { fit(d3.select(this), d3.select(this.parentNode).datum().w - 16); });
    arrowLabels.each(function (d) { fit(d3.select(this), d.room); });
  }

  function flow() {
    const points = layout.arrows.flatMap(([x1, y1, x2, y2]) => [[x1, y1], [x2, y2]]);
    dot.interrupt().attr("opacity", 1).attr("cx", points[0][0]).attr("cy", points[0][1]);
    let t = dot.transition().duration(250);
    for (const [x, y] of points.slice(1)) t = t.transition().duration(260).ease(d3.easeLinear).attr("cx", x).attr("cy", y);
    t.transition().attr("opacity", 0);
  }

  function update() {
    const run = store.main;
    const manifest = run?.manifest;
    if (!manifest) {
      arrowLabels.text((d) => d.label || "");
      loopLabel.text("× N timesteps");
      return;
    }
    const s = shapes(manifest);
    arrowLabels.text((d) => d.label || s[d.key]).each(function (d) { fit(d3.select(this), d.room); });
    const step = store.step();
    loopLabel.text(step ? `step ${store.selected + 1} of ${run.steps.length} (t = ${Math.round(step.timestep)})`
      : `× ${run.settings.steps} timesteps`);
  }
  store.addEventListener("run", () => { update(); flow(); });
  store.addEventListener("step", () => { update(); if (store.selected % 3 === 0) flow(); });
  store.addEventListener("select", update);
  store.addEventListener("finish", update);
  narrowQuery.addEventListener("change", build);
  build();
  new ResizeObserver(() => refit()).observe(svg.node());
  return { flow };
}
