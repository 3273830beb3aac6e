// Compare's two charts: both runs' latent trajectories projected to 2-D (PCA or UMAP), and the
// distance between the two latents at each step. The form and the side-by-side pictures are
// compare.js's; this module only draws from two finished runs.

import { dot, gramMatrix, pca2FromGram } from "./projection.js";
import { umap2 } from "./umap.js";

export const COLOURS = { main: "#4e79a7", compare: "#f28e2b" }; // Tableau 10 blue/orange: colour-blind safe

/** The step of `run` at the same fraction of the run as step `index` of a run of `count` steps. */
export function matchingStep(index, count, run) {
  const n = run.steps.length;
  if (!n) return null;
  const fraction = count > 1 ? index / (count - 1) : 1;
  return run.steps[Math.min(n - 1, Math.round(fraction * (n - 1)))];
}

const runIds = new WeakMap();
let nextRunId = 0;
const runId = (run) => (runIds.has(run) ? runIds.get(run) : (runIds.set(run, ++nextRunId), nextRunId));
let projectionCache = { key: null, value: null };

// Dot products between step tensors, kept while both tensors live: during a run each new step
// then costs n dot products, not a whole new Gram matrix.
const dots = new WeakMap();
function cachedDot(a, b) {
  let row = dots.get(a);
  if (!row) dots.set(a, (row = new WeakMap()));
  if (!row.has(b)) row.set(b, dot(a, b));
  return row.get(b);
}

/** PCA of both runs' latents together (one shared plane), recomputed only when the data change. */
function project(a, b, space) {
  const key = [space, runId(a), a.steps.length, runId(b), b.steps.length].join("|");
  if (projectionCache.key !== key) {
    const vectors = [...a.steps, ...b.steps].map((s) => s.tensors[space === "x0" ? "x0" : "latent"]);
    const sameLength = vectors.every((v) => v && v.length === vectors[0].length);
    projectionCache = { key, value: sameLength ? pca2FromGram(gramMatrix(vectors, cachedDot)) : null };
  }
  return projectionCache.value;
}

const SIZE = { width: 440, height: 300, margin: { top: 14, right: 16, bottom: 40, left: 52 } };

/** SIZE at the width the chart is shown (within limits): on a phone a 440-wide drawing scaled
 * down to ~220 px would shrink its 11 px labels to 5 px. */
function sizedFor(svg) {
  const shown = svg.getBoundingClientRect().width;
  return { ...SIZE, width: shown > 0 ? Math.max(260, Math.min(560, Math.round(shown))) : SIZE.width };
}
const LEGEND_HEIGHT = 36; // the projection's legend sits above the plot, never on the points

function frame(d3, svg, xLabel, yLabel, size = SIZE) {
  const { width, height, margin } = size;
  const root = d3.select(svg).attr("viewBox", `0 0 ${width} ${height}`);
  root.selectAll("*").remove();
  root.append("g").attr("class", "axis x").attr("transform", `translate(0,${height - margin.bottom})`);
  root.append("g").attr("class", "axis y").attr("transform", `translate(${margin.left},0)`);
  root.append("text").attr("class", "axis-label").attr("x", (margin.left + width - margin.right) / 2)
    .attr("y", height - 6).attr("text-anchor", "middle").text(xLabel);
  root.append("text").attr("class", "axis-label").attr("transform", `translate(13,${(margin.top + height - margin.bottom) / 2}) rotate(-90)`)
    .attr("text-anchor", "middle").text(yLabel);
  return root;
}

// UMAP of both runs' latents, computed once per pair of runs (it is iterative, unlike PCA).
let umapCache = { key: null, value: null };
export async function umapProjection(a, b, space) {
  const key = [space, runId(a), a.steps.length, runId(b), b.steps.length].join("|");
  if (umapCache.key !== key) {
    const vectors = [...a.steps, ...b.steps].map((s) => s.tensors[space === "x0" ? "x0" : "latent"]);
    const sameLength = vectors.every((v) => v && v.length === vectors[0].length);
    umapCache = { key, value: sameLength ? await umap2(vectors, 42) : null };
  }
  return umapCache.value;
}

/** `describe(run, other)` names a run in the legend (compare.js's words for what differs). */
export function drawProjection(d3, svg, store, a, b, selected, space, method = "pca", describe = () => "") {
  const result = method === "umap" ? umapCache.value : project(a, b, space);
  if (!result) {
    d3.select(svg).selectAll("*").remove();
    return;
  }
  const size = { ...sizedFor(svg), height: SIZE.height + LEGEND_HEIGHT, margin: { ...SIZE.margin, top: SIZE.margin.top + LEGEND_HEIGHT } };
  const { width, height, margin } = size;
  const percent = (k) => (result.total > 0 ? ` (${((100 * result.variance[k]) / result.total).toFixed(0)} % of the spread)` : "");
  const axis = method === "umap" ? "UMAP" : "direction";
  const root = frame(d3, svg, `${axis} 1${percent(0)}`, `${axis} 2${percent(1)}`, size);
  const points = result.points;
  const runs = [
    { key: "main", run: a, points: points.slice(0, a.steps.length) },
    { key: "compare", run: b, points: points.slice(a.steps.length) },
  ];
  const extent = (k) => d3.extent(points, (p) => p[k]);
  const pad = ([lo, hi]) => (hi - lo > 0 ? [lo - (hi - lo) * 0.06, hi + (hi - lo) * 0.06] : [lo - 1, hi + 1]);
  const x = d3.scaleLinear().domain(pad(extent(0))).range([margin.left, width - margin.right]);
  const y = d3.scaleLinear().domain(pad(extent(1))).range([height - margin.bottom, margin.top]);
  root.select(".axis.x").call(d3.axisBottom(x).ticks(5));
  root.select(".axis.y").call(d3.axisLeft(y).ticks(5));
  const line = d3.line().x((p) => x(p[0])).y((p) => y(p[1]));
  const selectedB = matchingStep(selected, a.steps.length, b).index;

  for (const { key, run, points: pts } of runs) {
    const group = root.append("g").attr("class", "run").attr("data-run", key);
    group.append("path").attr("class", "trajectory").attr("data-run", key).attr("d", line(pts))
      .attr("fill", "none").attr("stroke", COLOURS[key]).attr("stroke-width", 2)
      .attr("stroke-dasharray", key === "compare" ? "6 3" : null); // not by colour alone
    group.selectAll("circle").data(pts).join("circle")
      .attr("class", (p, i) => `point${i === (key === "main" ? selected : selectedB) ? " selected" : ""}`)
      .attr("data-step", (p, i) => i)
      .attr("cx", (p) => x(p[0])).attr("cy", (p) => y(p[1]))
      .attr("r", (p, i) => (i === (key === "main" ? selected : selectedB) ? 6 : 3))
      .attr("fill", COLOURS[key]).attr("stroke", (p, i) => (i === (key === "main" ? selected : selectedB) ? "#1d232b" : "#fff"))
      .style("cursor", "pointer")
      .on("click", (event, p) => {
        const i = pts.indexOf(p);
        // A step of B selects A's step at the same fraction of the run.
        const n = run.steps.length;
        store.select(key === "main" ? i : Math.round((n > 1 ? i / (n - 1) : 1) * (a.steps.length - 1)));
      })
      .append("title").text((p, i) => `${key === "main" ? "A" : "B"}, step ${i + 1}, t=${Math.round(run.steps[i].timestep)}`);
    group.append("text").attr("class", "start-label").attr("x", x(pts[0][0]) + 7).attr("y", y(pts[0][1]) - 7)
      .text("start"); // the same noise: the two labels coincide unless the scheduler scales it
  }
  legend(root, a, b, width, describe);
}

function legend(root, a, b, width = SIZE.width, describe = () => "") {
  // About 6 px a character at 11 px: a long prompt is cut to the chart's width (whole in its tooltip).
  const room = Math.max(12, Math.floor((width - SIZE.margin.left - 30) / 6));
  const fit = (text) => (text.length > room ? `${text.slice(0, room - 1)}…` : text);
  const g = root.append("g").attr("class", "legend").attr("transform", `translate(${SIZE.margin.left},4)`);
  [["main", a, b, "A"], ["compare", b, a, "B"]].forEach(([key, run, other, name], i) => {
    const row = g.append("g").attr("transform", `translate(0,${i * 16})`);
    row.append("line").attr("x2", 18).attr("y1", 5).attr("y2", 5).attr("stroke", COLOURS[key]).attr("stroke-width", 2)
      .attr("stroke-dasharray", key === "compare" ? "6 3" : null);
    const text = `${name}: ${describe(run, other)}`;
    row.append("text").attr("x", 24).attr("y", 9).text(fit(text)).append("title").text(text);
  });
}

/** L2 distance between A's step i and B's step at the same fraction of its run. */
export function distances(a, b, space = "latent") {
  const key = space === "x0" ? "x0" : "latent";
  return a.steps.map((step, i) => {
    const u = step.tensors[key];
    const v = matchingStep(i, a.steps.length, b).tensors[key];
    if (!u || !v || u.length !== v.length) return NaN;
    let sum = 0;
    for (let k = 0; k < u.length; k++) sum += (u[k] - v[k]) ** 2;
    return Math.sqrt(sum);
  });
}

export function drawDistance(d3, svg, store, a, b, selected, space) {
  const values = distances(a, b, space);
  const size = sizedFor(svg);
  const { width, height, margin } = size;
  const root = frame(d3, svg, "step of run A", space === "x0" ? "distance between the x̂0" : "distance between the latents", size);
  const x = d3.scaleLinear().domain([1, Math.max(2, values.length)]).range([margin.left, width - margin.right]);
  const y = d3.scaleLinear().domain([0, d3.max(values, (v) => (Number.isFinite(v) ? v : 0)) || 1]).nice()
    .range([height - margin.bottom, margin.top]);
  root.select(".axis.x").call(d3.axisBottom(x).tickValues(x.ticks(8).filter(Number.isInteger)).tickFormat(d3.format("d")));
  root.select(".axis.y").call(d3.axisLeft(y).ticks(5));
  const line = d3.line().defined(Number.isFinite).x((v, i) => x(i + 1)).y((v) => y(v));
  root.append("path").attr("class", "distance-line").attr("d", line(values))
    .attr("fill", "none").attr("stroke", "#59a14f").attr("stroke-width", 2);
  const data = values.map((v, i) => ({ v, i }));
  root.append("g").selectAll("circle").data(data).join("circle")
    .attr("class", (d) => `point${d.i === selected ? " selected" : ""}`)
    .attr("data-step", (d) => d.i)
    .attr("cx", (d) => x(d.i + 1)).attr("cy", (d) => y(Number.isFinite(d.v) ? d.v : 0))
    .attr("r", (d) => (d.i === selected ? 6 : 3)).attr("fill", "#59a14f")
    .attr("stroke", (d) => (d.i === selected ? "#1d232b" : "#fff"))
    .style("cursor", "pointer")
    .on("click", (event, d) => store.select(d.i))
    .append("title").text((d) => `step ${d.i + 1}: ${d.v.toPrecision(4)}`);
}
