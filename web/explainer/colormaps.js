// Arrays as pictures. Unsigned values use viridis; signed values (noise, latents) use a diverging
// red-blue map centred on zero. Both stay readable for colour-blind viewers.

const d3 = globalThis.d3;

function lut(interpolate) {
  const table = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const c = d3.rgb(interpolate(i / 255));
    table.set([c.r, c.g, c.b], i * 3);
  }
  return table;
}

const VIRIDIS = lut(d3.interpolateViridis);
const DIVERGING = lut((t) => d3.interpolateRdBu(1 - t)); // negative blue, positive red

/** Largest |value|, for a symmetric scale shared by several pictures. */
export function maxAbs(...arrays) {
  let m = 0;
  for (const a of arrays) for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m || 1;
}

/** Draw `width × height` values starting at `offset` of `data` into `canvas`. */
export function drawValues(canvas, data, width, height, { signed = true, scale = null, offset = 0 } = {}) {
  canvas.width = width;
  canvas.height = height;
  const image = new ImageData(width, height);
  let lo = Infinity;
  let hi = -Infinity;
  if (!signed && scale === null) {
    for (let i = 0; i < width * height; i++) {
      lo = Math.min(lo, data[offset + i]);
      hi = Math.max(hi, data[offset + i]);
    }
  }
  const limit = scale ?? maxAbs(data.subarray(offset, offset + width * height));
  const table = signed ? DIVERGING : VIRIDIS;
  for (let i = 0; i < width * height; i++) {
    const v = data[offset + i];
    const t = signed ? 0.5 + v / (2 * limit) : (v - lo) / (hi - lo || 1);
    const k = Math.max(0, Math.min(255, Math.round(t * 255))) * 3;
    image.data.set([table[k], table[k + 1], table[k + 2], 255], i * 4);
  }
  canvas.getContext("2d").putImageData(image, 0, 0);
  return canvas;
}

export function drawRgba(canvas, { width, height, rgba }) {
  canvas.width = width;
  canvas.height = height;
  canvas.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(rgba), width, height), 0, 0);
  return canvas;
}

/** A labelled figure holding a canvas, for the panels' picture grids. */
export function figure(caption, className = "") {
  const fig = document.createElement("figure");
  fig.className = `pic ${className}`;
  const canvas = document.createElement("canvas");
  const cap = document.createElement("figcaption");
  cap.textContent = caption;
  fig.append(canvas, cap);
  return { fig, canvas, cap };
}

/** A legend: a small gradient bar with its range. */
export function legend(signed, limit) {
  const el = document.createElement("div");
  el.className = "legend";
  const bar = document.createElement("canvas");
  const ramp = new Float32Array(64).map((_, i) => (signed ? -limit + (2 * limit * i) / 63 : i));
  drawValues(bar, ramp, 64, 1, { signed, scale: signed ? limit : null });
  // Each end of the bar is labelled at that end, so the scale reads like a ruler.
  if (signed) el.append(`−${limit.toFixed(2)} `, bar, ` +${limit.toFixed(2)} (white: 0)`);
  else el.append("low ", bar, " high");
  return el;
}
