// Level 1: the three parts of Stable Diffusion as a diagram, with the data flowing between them.
// Shapes are the live model's. Clicking a part opens its level-2 panel (detail.js).

const d3 = globalThis.d3;

export const COMPONENTS = [
  { id: "text", title: "Text Representation Generator", parts: "tokenizer → text encoder" },
  { id: "refiner", title: "Image Representation Refiner", parts: "UNet noise predictor + guidance + scheduler" },
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

export function mountOverview(container, store, onOpen) {
  const svg = d3.select(container).append("svg")
    .attr("viewBox", "0 0 900 200").attr("role", "img")
    .attr("aria-label", "Stable Diffusion: text representation, image representation refiner, image upscaler");
  const boxes = [
    { x: 120, w: 210 }, { x: 390, w: 230 }, { x: 680, w: 170 },
  ].map((b, i) => ({ ...b, ...COMPONENTS[i], y: 45, h: 90 }));

  const arrows = [
    { x1: 20, x2: 120, y: 90, label: "prompt" },
    { x1: 330, x2: 390, y: 90, key: "text" },
    { x1: 620, x2: 680, y: 90, key: "latent" },
    { x1: 850, x2: 895, y: 90, key: "image" },
  ];
  svg.append("defs").append("marker").attr("id", "arrow").attr("viewBox", "0 0 10 10").attr("refX", 9)
    .attr("refY", 5).attr("markerWidth", 7).attr("markerHeight", 7).attr("orient", "auto")
    .append("path").attr("d", "M0,0 L10,5 L0,10 z").attr("fill", "#5a6572");
  svg.selectAll("line.flow").data(arrows).join("line").attr("class", "flow")
    .attr("x1", (d) => d.x1).attr("x2", (d) => d.x2 - 2).attr("y1", (d) => d.y).attr("y2", (d) => d.y)
    .attr("stroke", "#5a6572").attr("stroke-width", 2).attr("marker-end", "url(#arrow)");
  const arrowLabels = svg.selectAll("text.shape").data(arrows).join("text").attr("class", "shape")
    .attr("x", (d) => (d.x1 + d.x2) / 2).attr("y", (d) => d.y - 10).attr("text-anchor", "middle");

  // The refiner loops: its output latent goes back in for the next timestep.
  svg.append("path").attr("d", "M 560 135 C 560 185, 450 185, 450 135").attr("fill", "none")
    .attr("stroke", "#2f5d9b").attr("stroke-width", 2).attr("marker-end", "url(#arrow)");
  const loopLabel = svg.append("text").attr("x", 505).attr("y", 195).attr("text-anchor", "middle")
    .attr("class", "loop");

  const groups = svg.selectAll("g.component").data(boxes).join("g").attr("class", "component")
    .attr("tabindex", 0).attr("role", "button")
    .attr("aria-label", (d) => `open ${d.title}`)
    .on("click", (_, d) => onOpen(d.id))
    .on("keydown", (event, d) => (event.key === "Enter" || event.key === " ") && (event.preventDefault(), onOpen(d.id)));
  groups.append("rect").attr("x", (d) => d.x).attr("y", (d) => d.y).attr("width", (d) => d.w)
    .attr("height", (d) => d.h).attr("rx", 10);
  groups.append("text").attr("x", (d) => d.x + d.w / 2).attr("y", (d) => d.y + 38).attr("text-anchor", "middle")
    .attr("class", "title").text((d) => d.title.split(" ").slice(0, 2).join(" "));
  groups.append("text").attr("x", (d) => d.x + d.w / 2).attr("y", (d) => d.y + 56).attr("text-anchor", "middle")
    .attr("class", "title").text((d) => d.title.split(" ").slice(2).join(" "));
  groups.append("text").attr("x", (d) => d.x + d.w / 2).attr("y", (d) => d.y + 76).attr("text-anchor", "middle")
    .attr("class", "parts").text((d) => d.parts);

  // Data flowing: a dot runs along each arrow in turn while a run is going on or playing.
  const dot = svg.append("circle").attr("r", 5).attr("fill", "#f0b429").attr("opacity", 0);
  function flow() {
    dot.interrupt().attr("opacity", 1).attr("cx", 20).attr("cy", 90);
    let t = dot.transition().duration(250);
    for (const x of [120, 330, 390, 620, 680, 850, 895]) t = t.transition().duration(260).ease(d3.easeLinear).attr("cx", x);
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
    arrowLabels.text((d) => d.label || s[d.key]);
    const step = store.step();
    loopLabel.text(step ? `step ${store.selected + 1} of ${run.steps.length} (t = ${Math.round(step.timestep)})`
      : `× ${run.settings.steps} timesteps`);
  }
  store.addEventListener("run", () => { update(); flow(); });
  store.addEventListener("step", () => { update(); if (store.selected % 3 === 0) flow(); });
  store.addEventListener("select", update);
  store.addEventListener("finish", update);
  update();
  return { flow };
}
