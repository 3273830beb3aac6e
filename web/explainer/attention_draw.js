// Drawing attention maps on a given colour scale (attention_maps.js makes the scale): the map
// itself in viridis, the map laid over a grey copy of the picture, and the legend of both in shares
// of attention. A value at or below the scale's lo is drawn as nothing (dark / plain grey), one at
// hi at full colour, so a weak word looks weak.

const d3 = globalThis.d3;
const VIRIDIS = Array.from({ length: 256 }, (_, i) => d3.rgb(d3.interpolateViridis(i / 255)));
const MAX_ALPHA = 0.6; // at the top of the scale 40% of the grey picture still shows through, edges and all

const level = (v, { lo, hi }) => Math.max(0, Math.min(1, (v - lo) / (hi - lo || 1)));
const colourAt = (t) => VIRIDIS[Math.round(t * 255)];

// Grey copy of a pixel, lifted so that dark colours (a red shape's luminance is only 0.3) stay
// clearly apart from black and the picture's shapes stay recognisable under the colour.
const grey = (r, g, b) => 40 + 0.8 * (0.3 * r + 0.59 * g + 0.11 * b);

function blend(out, i, g, t) {
  const c = colourAt(t);
  const a = MAX_ALPHA * t;
  out[i] = (1 - a) * g + a * c.r;
  out[i + 1] = (1 - a) * g + a * c.g;
  out[i + 2] = (1 - a) * g + a * c.b;
  out[i + 3] = 255;
}

/** The h×w map as a picture, one cell per latent position, on `scale`. */
export function drawMap(canvas, map, w, h, scale) {
  canvas.width = w;
  canvas.height = h;
  const image = new ImageData(w, h);
  map.forEach((v, p) => {
    const c = colourAt(level(v, scale));
    image.data.set([c.r, c.g, c.b, 255], p * 4);
  });
  canvas.getContext("2d").putImageData(image, 0, 0);
}

// Bilinear (half-pixel) resampling of an h×w map to the picture's size, only for drawing it over
// the picture; the numbers recorded and the raw map beside it are the run's own.
function resample(map, h, w, H, W) {
  const out = new Float32Array(H * W);
  const at = (y, x) => map[y * w + x];
  for (let y = 0; y < H; y++) {
    const sy = Math.min(Math.max((y + 0.5) * (h / H) - 0.5, 0), h - 1);
    const y0 = Math.floor(sy);
    const y1 = Math.min(y0 + 1, h - 1);
    const fy = sy - y0;
    for (let x = 0; x < W; x++) {
      const sx = Math.min(Math.max((x + 0.5) * (w / W) - 0.5, 0), w - 1);
      const x0 = Math.floor(sx);
      const x1 = Math.min(x0 + 1, w - 1);
      const fx = sx - x0;
      out[y * W + x] = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) + fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
    }
  }
  return out;
}

/** The picture in grey with the map's colour laid over it, more strongly where the share is larger. */
export function overlay(image, map, h, w, scale) {
  const { width: W, height: H, rgba } = image;
  const up = resample(map, h, w, H, W);
  const out = new Uint8ClampedArray(W * H * 4);
  for (let p = 0; p < W * H; p++) blend(out, p * 4, grey(rgba[p * 4], rgba[p * 4 + 1], rgba[p * 4 + 2]), level(up[p], scale));
  return { width: W, height: H, rgba: out };
}

const fmt = (x) => (x === 0 ? "0" : x >= 0.01 ? x.toFixed(3) : x.toPrecision(2));

/**
 * The legend, in shares of one position's attention: the bar runs from `scale.lo` to `scale.hi`;
 * its upper row is the map's colours, its lower row the same over a light grey (the picture's
 * white), and a black tick marks an even spread over all tokens (`even`), where there is one.
 */
export function shareLegend(scale, even, what, { raw = true } = {}) {
  const el = document.createElement("div");
  el.className = "legend share-legend";
  const bar = document.createElement("canvas");
  const W = 120;
  const rows = raw ? 2 : 1;
  bar.width = W;
  bar.height = rows * 6;
  const data = new Uint8ClampedArray(W * rows * 6 * 4);
  for (let x = 0; x < W; x++) {
    const t = x / (W - 1);
    for (let y = 0; y < rows * 6; y++) {
      const i = (y * W + x) * 4;
      if (raw && y < 6) {
        const c = colourAt(t);
        data.set([c.r, c.g, c.b, 255], i);
      } else blend(data, i, grey(255, 255, 255), t);
    }
  }
  const tick = Math.round(((even - scale.lo) / (scale.hi - scale.lo)) * (W - 1));
  if (tick >= 0 && tick < W) for (let y = 0; y < rows * 6; y++) data.set([0, 0, 0, 255], (y * W + tick) * 4);
  bar.getContext("2d").putImageData(new ImageData(data, W, rows * 6), 0, 0);
  bar.setAttribute("role", "img");
  bar.setAttribute("aria-label", `colour scale from ${fmt(scale.lo)} to ${fmt(scale.hi)}`);
  const label = document.createElement("span");
  label.className = "share-legend-what";
  label.textContent = what;
  const ruler = document.createElement("span");
  ruler.className = "share-legend-ruler"; // the two ends stay beside the bar on a phone
  ruler.append(`${fmt(scale.lo)} `, bar, ` ${fmt(scale.hi)}`);
  el.append(label, ruler, " of a position's attention");
  if (tick >= 0 && tick < W) el.append(` (black tick: an even spread, ${fmt(even)})`);
  return el;
}

export { fmt };
