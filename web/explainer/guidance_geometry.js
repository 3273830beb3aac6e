// Level 3 of guidance: ε_uncond, ε_cond and the guided ε of the selected step drawn as arrows.
//
// The three vectors have thousands of numbers each, but they lie in one flat plane through the
// origin: ε_guided = ε_uncond + g·(ε_cond − ε_uncond) is a mix of the other two. So we need no
// lossy projection (PCA and the like): an orthonormal basis of the plane spanned by ε_uncond and
// ε_cond (Gram–Schmidt) gives 2-D coordinates that keep every length, angle and distance between
// the three vectors exactly. What it leaves out is only the direction of that plane among all
// the latent's dimensions. The guided ε the run computed is projected too, not rebuilt from the
// formula, and the part of it that lies outside the plane (float rounding) is reported.

import { displayed } from "./displayed.js";

const d3 = globalThis.d3;

function dot(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * Coordinates of the three vectors in the plane of ε_uncond and ε_cond: x along ε_uncond, y along
 * the part of ε_cond at right angles to it (so ε_cond has y ≥ 0). Works in float64 on the run's
 * float32 tensors. Without guidance (no ε_uncond) the plane degenerates to ε_cond's own line.
 */
export function guidancePlane({ eps_uncond: u, eps_cond: c, eps_guided: e }) {
  const first = u || c;
  const length = Math.sqrt(dot(first, first));
  if (!length) throw new Error("guidance geometry: a zero noise prediction has no direction");
  const e1 = Float64Array.from(first, (v) => v / length);
  const along = dot(c, e1);
  const rest = Float64Array.from(c, (v, i) => v - along * e1[i]);
  const restLength = Math.sqrt(dot(rest, rest));
  // Without guidance there is one vector: its line is the whole picture (y = 0).
  const e2 = u && restLength ? rest.map((v) => v / restLength) : new Float64Array(c.length);
  const project = (v) => [dot(v, e1), dot(v, e2)];
  const points = { cond: project(c), guided: project(e) };
  if (u) points.uncond = project(u);
  // How far the computed guided ε sticks out of the plane: zero up to rounding.
  const [gx, gy] = points.guided;
  let off = 0;
  for (let i = 0; i < e.length; i++) off += (e[i] - gx * e1[i] - gy * e2[i]) ** 2;
  const norm = (v) => Math.sqrt(dot(v, v));
  return {
    points,
    norms: { uncond: u ? norm(u) : null, cond: norm(c), guided: norm(e) },
    difference: u ? Math.hypot(points.cond[0] - points.uncond[0], points.cond[1] - points.uncond[1]) : null,
    push: u ? Math.hypot(points.guided[0] - points.uncond[0], points.guided[1] - points.uncond[1]) : null,
    outOfPlane: Math.sqrt(off),
    dimensions: c.length,
  };
}

const COLOURS = { uncond: "#7b8794", cond: "#2f5d9b", guided: "#c85f0a" };
const fmt = (x) => (Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2));

/** Append the figure for the selected step to `panel` (after the guidance formula when there is one). */
export function drawGuidanceGeometry(panel, run, store) {
  const step = store.step();
  if (!step) return;
  const g = Number(run.settings.guidance);
  const geometry = guidancePlane(step.tensors);
  const guided = Boolean(step.tensors.eps_uncond);
  const section = document.createElement("figure");
  section.className = "guidance-geometry";
  section.id = "guidance-geometry";
  const heading = document.createElement("h4");
  heading.textContent = "Guidance as arrows (level 3)";
  section.append(heading);
  const views = document.createElement("div");
  views.className = "geometry-views";
  section.append(views);
  views.append(plot(geometry, g, guided, false));
  if (guided) views.append(plot(geometry, g, guided, true));
  const caption = document.createElement("figcaption");
  caption.innerHTML = guided ? captionGuided(geometry, g) : captionUnguided(geometry, g);
  section.append(caption);
  const anchor = panel.querySelector("p.formula");
  if (anchor) anchor.after(section);
  else panel.append(section);

  displayed.guidanceGeometry = {
    index: store.selected, guidance: g, points: structuredClone(geometry.points), norms: { ...geometry.norms },
    difference: geometry.difference, push: geometry.push, outOfPlane: geometry.outOfPlane,
    dimensions: geometry.dimensions,
  };
}

function captionGuided(geo, g) {
  return `Each arrow is one whole noise prediction (${geo.dimensions.toLocaleString("en")} numbers) drawn in the
    flat plane that holds all three, so lengths and angles are true, not squashed: |ε_uncond| = ${fmt(geo.norms.uncond)},
    |ε_cond| = ${fmt(geo.norms.cond)}, |ε| = ${fmt(geo.norms.guided)}. Your prompt moves the prediction by
    <b>${fmt(geo.difference)}</b> (ε_uncond → ε_cond); guidance g = <b>${g}</b> walks ${g}× as far along that same line,
    <b>${fmt(geo.push)}</b>, to the guided ε the scheduler uses. The right-hand view zooms in on the arrow tips;
    its ticks mark 1×, 2×, … the prompt's difference. (The computed ε lies ${geo.outOfPlane.toExponential(1)} off this
    plane: float rounding.)`;
}

function captionUnguided(geo, g) {
  return `Guidance g = ${g} ≤ 1 is off: the model runs once per step and ε = ε_cond, one arrow of length
    ${fmt(geo.norms.cond)} (${geo.dimensions.toLocaleString("en")} numbers). With g > 1 a second arrow, ε_uncond, appears and
    the guided ε is pushed beyond ε_cond, away from it.`;
}

/** One SVG view: the whole arrows from the origin, or (`zoom`) the region around their tips. */
function plot(geo, g, guided, zoom) {
  const size = { w: 360, h: 240, pad: 28 };
  const p = geo.points;
  const names = guided ? ["uncond", "cond", "guided"] : ["cond"];
  const tips = names.map((n) => p[n]);
  let xs = tips.map((t) => t[0]);
  let ys = tips.map((t) => t[1]);
  if (!zoom) {
    xs = [0, ...xs];
    ys = [0, ...ys];
  }
  // Equal units on both axes (or angles would lie), as large as the view allows; room on the
  // right for the labels.
  const right = 90;
  const xSpan = d3.max(xs) - d3.min(xs) || 1;
  const ySpan = d3.max(ys) - d3.min(ys) || 1;
  const k = Math.min((size.w - 2 * size.pad - right) / xSpan, (size.h - 2 * size.pad) / ySpan);
  const cx = (d3.max(xs) + d3.min(xs)) / 2;
  const cy = (d3.max(ys) + d3.min(ys)) / 2;
  const sx = (x) => (size.w - right) / 2 + (x - cx) * k;
  const sy = (y) => size.h / 2 - (y - cy) * k;
  const svg = d3.create("svg").attr("viewBox", `0 0 ${size.w} ${size.h}`).attr("class", zoom ? "zoom" : "whole")
    .attr("role", "img")
    .attr("aria-label", zoom
      ? `zoom on the arrow tips: the guided ε lies ${g} times the prompt's difference beyond ε_uncond`
      : `three arrows from the origin: ε_uncond, ε_cond and the guided ε`);
  const defs = svg.append("defs");
  for (const [name, colour] of Object.entries(COLOURS)) {
    defs.append("marker").attr("id", `geo-head-${name}-${zoom ? "z" : "w"}`).attr("viewBox", "0 0 10 10")
      .attr("refX", 9).attr("refY", 5).attr("markerWidth", 7).attr("markerHeight", 7).attr("orient", "auto")
      .append("path").attr("d", "M0,0 L10,5 L0,10 z").attr("fill", colour);
  }
  const label = { uncond: "ε_uncond", cond: "ε_cond", guided: guided ? `ε (g = ${g})` : "ε = ε_cond" };
  if (guided) {
    // The prompt's difference and its multiples, on the line from ε_uncond through ε_cond.
    const [ux, uy] = p.uncond;
    const [dx, dy] = [p.cond[0] - ux, p.cond[1] - uy];
    svg.append("line").attr("class", "push").attr("x1", sx(ux)).attr("y1", sy(uy))
      .attr("x2", sx(p.guided[0])).attr("y2", sy(p.guided[1])).attr("stroke", COLOURS.guided)
      .attr("stroke-width", 2).attr("stroke-dasharray", "5 4");
    if (zoom) {
      const ticks = d3.range(1, Math.floor(g) + 1);
      svg.append("g").selectAll("circle").data(ticks).join("circle").attr("class", "tick")
        .attr("cx", (k) => sx(ux + k * dx)).attr("cy", (k) => sy(uy + k * dy)).attr("r", 2.5).attr("fill", "#1d232b");
      // Tick labels on the left of the line, the tips' names on the right.
      svg.append("g").selectAll("text").data(ticks.filter((j) => j === 1 || j === ticks.length)).join("text")
        .attr("class", "tick-label").attr("text-anchor", "end")
        .attr("x", (j) => sx(ux + j * dx) - 8).attr("y", (j) => sy(uy + j * dy) + 4)
        .text((j) => `${j}×`);
    }
  }
  if (!zoom) {
    svg.append("circle").attr("cx", sx(0)).attr("cy", sy(0)).attr("r", 3).attr("fill", "#1d232b");
    svg.append("text").attr("class", "origin").attr("x", sx(0) + 5).attr("y", sy(0) + 14).text("0");
  }
  for (const name of names) {
    const [x, y] = p[name];
    const from = zoom ? null : [0, 0];
    if (from) {
      svg.append("line").attr("class", `arrow ${name}`).attr("data-name", name)
        .attr("data-x", x).attr("data-y", y)
        .attr("x1", sx(0)).attr("y1", sy(0)).attr("x2", sx(x)).attr("y2", sy(y))
        .attr("stroke", COLOURS[name]).attr("stroke-width", 2.5)
        .attr("marker-end", `url(#geo-head-${name}-w)`);
    } else {
      svg.append("circle").attr("class", `tip ${name}`).attr("data-name", name).attr("data-x", x).attr("data-y", y)
        .attr("cx", sx(x)).attr("cy", sy(y)).attr("r", 5).attr("fill", COLOURS[name]);
    }
  }
  // Labels: beside each tip, nudged apart when tips nearly coincide (they do at full scale).
  const placed = [];
  for (const name of names) {
    const [x, y] = p[name];
    let ly = sy(y) - 8;
    while (placed.some((q) => Math.abs(q - ly) < 13)) ly -= 13;
    placed.push(ly);
    svg.append("text").attr("class", `label ${name}`).attr("x", Math.min(sx(x) + 8, size.w - 84)).attr("y", ly)
      .attr("fill", COLOURS[name]).text(label[name]);
  }
  const fig = document.createElement("div");
  fig.className = "geometry-view";
  const title = document.createElement("div");
  title.className = "note";
  title.textContent = zoom ? "zoomed in on the tips" : "to scale, from the origin";
  fig.append(title, svg.node());
  return fig;
}
