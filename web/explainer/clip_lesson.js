// Level 3 of the text encoder: how CLIP learned to put a caption's numbers near those of the
// pictures it describes (contrastive training on image–text pairs). The figure is a schematic
// of the idea (marked as such, with no numbers on it); the sentence about this model's own text
// encoder comes from its manifest.

const d3 = globalThis.d3;

// Four tiny pictures and their captions, drawn as SVG: a batch of image–text pairs.
const BATCH = [
  { caption: "a red circle", colour: "#dc1e23", shape: "circle" },
  { caption: "a blue square", colour: "#1e3cd7", shape: "square" },
  { caption: "a yellow star", colour: "#e6c300", shape: "star" },
  { caption: "a pink heart", colour: "#f57dc3", shape: "heart" },
];

function shapePath(shape, r) {
  if (shape === "circle") return d3.arc()({ innerRadius: 0, outerRadius: r, startAngle: 0, endAngle: 2 * Math.PI });
  if (shape === "square") return `M${-r},${-r}h${2 * r}v${2 * r}h${-2 * r}z`;
  if (shape === "star") {
    const pts = d3.range(10).map((i) => {
      const a = (i * Math.PI) / 5 - Math.PI / 2;
      const k = i % 2 ? r * 0.45 : r;
      return [k * Math.cos(a), k * Math.sin(a)];
    });
    return `M${pts.map((p) => p.join(",")).join("L")}z`;
  }
  return `M0,${r * 0.9} C${-r * 1.6},${-r * 0.2} ${-r * 0.5},${-r * 1.3} 0,${-r * 0.4} C${r * 0.5},${-r * 1.3} ${r * 1.6},${-r * 0.2} 0,${r * 0.9}z`;
}

function matrixFigure() {
  const cell = 46;
  const left = 130;
  const top = 64;
  const n = BATCH.length;
  const svg = d3.create("svg").attr("viewBox", `0 0 ${left + n * cell + 10} ${top + n * cell + 34}`)
    .attr("class", "clip-matrix").attr("role", "img")
    .attr("aria-label", "A table of every caption against every picture in a batch. Training makes the matching "
      + "pairs on the diagonal similar and all other pairs dissimilar.");
  // Pictures across the top (image encoder), captions down the side (text encoder).
  BATCH.forEach((item, j) => {
    svg.append("rect").attr("x", left + j * cell + 4).attr("y", 10).attr("width", cell - 8).attr("height", cell - 8)
      .attr("fill", "#f8f8f8").attr("stroke", "#c5ccd4");
    svg.append("path").attr("d", shapePath(item.shape, 13)).attr("fill", item.colour)
      .attr("transform", `translate(${left + j * cell + cell / 2},${10 + (cell - 8) / 2})`);
  });
  BATCH.forEach((item, i) => {
    svg.append("text").attr("x", left - 8).attr("y", top + i * cell + cell / 2 + 4).attr("text-anchor", "end")
      .attr("class", "caption").text(`“${item.caption}”`);
  });
  const cells = svg.append("g").selectAll("rect").data(d3.cross(d3.range(n), d3.range(n))).join("rect")
    .attr("class", ([i, j]) => (i === j ? "cell match" : "cell other"))
    .attr("x", ([, j]) => left + j * cell + 2).attr("y", ([i]) => top + i * cell + 2)
    .attr("width", cell - 4).attr("height", cell - 4).attr("rx", 4).attr("fill", "#d9dee4");
  const marks = svg.append("g").selectAll("text").data(d3.cross(d3.range(n), d3.range(n))).join("text")
    .attr("class", "mark").attr("x", ([, j]) => left + j * cell + cell / 2).attr("y", ([i]) => top + i * cell + cell / 2 + 6)
    .attr("text-anchor", "middle").attr("opacity", 0).text(([i, j]) => (i === j ? "↑" : "↓"));
  svg.append("text").attr("x", (left + n * cell + 10) / 2).attr("y", top + n * cell + 22).attr("text-anchor", "middle")
    .attr("class", "axis").text("each cell: how alike a caption and a picture are");
  /** Show the table before training (all alike) or after (matches high, the rest low). */
  const show = (trained, animate = true) => {
    const t = animate ? d3.transition().duration(900) : null;
    const target = (sel) => (t ? sel.transition(t) : sel);
    target(cells).attr("fill", ([i, j]) => (!trained ? "#d9dee4" : i === j ? "#2f5d9b" : "#eef3fa"));
    target(marks).attr("opacity", trained ? 1 : 0).attr("fill", ([i, j]) => (i === j ? "#fff" : "#7b8794"));
  };
  return { node: svg.node(), show };
}

function ownEncoder(manifest) {
  if (manifest?.text_encoder_training) return manifest.text_encoder_training;
  return "Stable Diffusion keeps only CLIP's text half: it uses the text encoder as it came out of this training, frozen.";
}

export function drawClipLesson(panel, run) {
  const details = document.createElement("details");
  details.className = "level3 clip-lesson";
  details.id = "clip-lesson";
  details.innerHTML = `<summary>How did the text encoder learn what words mean? (level 3: CLIP's contrastive training)</summary>
    <div class="clip-body">
      <div class="clip-text">
        <p>Stable Diffusion's text encoder is half of <b>CLIP</b>, a pair of networks OpenAI trained in 2021 on about
        400 million pictures from the web, each with the caption written next to it. One network turns a picture into a
        list of numbers, the other turns a caption into a list of the same length.</p>
        <p>Training shows them a batch of picture–caption pairs at a time and compares <b>every</b> caption with
        <b>every</b> picture. It nudges both networks so that each caption's numbers point the same way as its own
        picture's (the diagonal: ↑ more similar) and away from all the other pictures in the batch (↓ less similar).
        This is called <b>contrastive</b> learning: the networks learn from the contrast between right and wrong pairs,
        with nobody labelling anything by hand.</p>
        <p>After millions of batches, captions land near the pictures they describe, so “a red circle” ends up near
        red, round things. That is why the UNet can use these numbers as directions for what to draw.</p>
        <p class="own-encoder"></p>
      </div>
      <figure class="clip-figure">
        <div class="clip-svg"></div>
        <figcaption>A schematic of one training batch (the idea, not measured numbers).
          <button type="button" class="clip-train" aria-pressed="false">show after training</button></figcaption>
      </figure>
    </div>`;
  details.querySelector(".own-encoder").textContent = `This model: ${ownEncoder(run.manifest)}`;
  const matrix = matrixFigure();
  details.querySelector(".clip-svg").append(matrix.node);
  matrix.show(false, false);
  const button = details.querySelector(".clip-train");
  button.addEventListener("click", () => {
    const trained = button.getAttribute("aria-pressed") !== "true";
    button.setAttribute("aria-pressed", String(trained));
    button.textContent = trained ? "show before training" : "show after training";
    matrix.show(trained);
  });
  panel.append(details);
}
