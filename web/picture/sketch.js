// The sketch pad: a picture at the model's size (64×64 for the default model), shown enlarged
// with square pixels, drawn on with the mouse, a finger or a pen (pointer events). The brush
// paints whole pixels with no smoothing, so what the learner sees is exactly what the model gets.

/** Brush colours: the default model's own palette (export/shapes/scenes.py), so a sketch looks like
 * what it was trained on, and its backgrounds; then pure black and white. */
export const COLOURS = [
  ["red", [220, 30, 35]], ["orange", [245, 135, 20]], ["yellow", [245, 220, 35]], ["green", [35, 160, 55]],
  ["cyan", [40, 200, 210]], ["blue", [30, 60, 215]], ["purple", [135, 45, 190]], ["pink", [245, 125, 195]],
  ["brown", [125, 75, 35]], ["white", [248, 248, 248]], ["gray", [128, 128, 128]], ["light blue", [185, 215, 245]],
  ["beige", [235, 222, 190]], ["black", [18, 18, 18]], ["pure black", [0, 0, 0]], ["pure white", [255, 255, 255]],
];
export const SIZES = [1, 3, 5, 9]; // brush diameters in the model's pixels
export const BLANK = [248, 248, 248]; // the model's "white background"
const UNDO_DEPTH = 40;
const STEP = 0.25; // a stroke is stamped every quarter pixel, so fast strokes leave no gaps

/**
 * The pixels a stroke from a to b paints with a brush of `size`: every pixel whose centre lies
 * within size/2 of a point on the segment, and the pixel under each point (a 1-pixel brush).
 * Points are in the model's pixels (0 … width), as floats. (The tests apply the same rule.)
 */
export function strokePixels(a, b, size, width, height) {
  const pixels = new Set();
  const n = Math.max(1, Math.ceil(Math.hypot(b[0] - a[0], b[1] - a[1]) / STEP));
  const r = size / 2;
  const reach = Math.ceil(r);
  for (let i = 0; i <= n; i++) {
    const x = a[0] + ((b[0] - a[0]) * i) / n;
    const y = a[1] + ((b[1] - a[1]) * i) / n;
    const [cx, cy] = [Math.floor(x), Math.floor(y)];
    for (let py = cy - reach; py <= cy + reach; py++) {
      for (let px = cx - reach; px <= cx + reach; px++) {
        if (px < 0 || py < 0 || px >= width || py >= height) continue;
        const under = px === cx && py === cy;
        if (under || (px + 0.5 - x) ** 2 + (py + 0.5 - y) ** 2 <= r * r) pixels.add(py * width + px);
      }
    }
  }
  return pixels;
}

export class SketchPad extends EventTarget {
  constructor(canvas) {
    super();
    this.canvas = canvas;
    this.colour = COLOURS[0][1];
    this.size = 5;
    this.undoStack = [];
    this.resize(canvas.width, canvas.height);
    this.listen();
  }

  /** A blank pad of a new size (another model). */
  resize(width, height) {
    this.width = width;
    this.height = height;
    this.canvas.width = width;
    this.canvas.height = height;
    this.pixels = new Uint8ClampedArray(width * height * 4);
    this.undoStack = [];
    this.paintAll(BLANK);
    this.render();
  }

  /** What the model would start from: {width, height, rgba}. */
  picture() {
    return { width: this.width, height: this.height, rgba: Uint8ClampedArray.from(this.pixels) };
  }

  remember() {
    this.undoStack.push(Uint8ClampedArray.from(this.pixels));
    if (this.undoStack.length > UNDO_DEPTH) this.undoStack.shift();
  }

  changed(how) {
    this.render();
    this.dispatchEvent(new CustomEvent("change", { detail: { how } }));
  }

  paintAll(rgb) {
    for (let i = 0; i < this.pixels.length; i += 4) this.pixels.set([...rgb, 255], i);
  }

  /** Fill the whole pad with the brush colour (a background to draw on). */
  fill() {
    this.remember();
    this.paintAll(this.colour);
    this.changed("fill");
  }

  clear() {
    this.remember();
    this.paintAll(BLANK);
    this.changed("clear");
  }

  undo() {
    if (!this.undoStack.length) return false;
    this.pixels = this.undoStack.pop();
    this.changed("undo");
    return true;
  }

  get canUndo() {
    return this.undoStack.length > 0;
  }

  /** Put a picture (already at the pad's size) on the pad; undo takes it off again. */
  load({ width, height, rgba }) {
    if (width !== this.width || height !== this.height) throw new Error(`the pad is ${this.width}×${this.height}, not ${width}×${height}`);
    this.remember();
    this.pixels = Uint8ClampedArray.from(rgba);
    this.changed("load");
  }

  stroke(a, b) {
    for (const i of strokePixels(a, b, this.size, this.width, this.height)) this.pixels.set([...this.colour, 255], i * 4);
  }

  render() {
    this.canvas.getContext("2d").putImageData(new ImageData(Uint8ClampedArray.from(this.pixels), this.width, this.height), 0, 0);
  }

  /** A pointer event's position in the model's pixels. */
  at(event) {
    const box = this.canvas.getBoundingClientRect();
    return [((event.clientX - box.left) / box.width) * this.width, ((event.clientY - box.top) / box.height) * this.height];
  }

  listen() {
    let last = null;
    let pointer = null;
    const canvas = this.canvas;
    canvas.style.touchAction = "none"; // a finger draws instead of scrolling the page
    canvas.addEventListener("pointerdown", (event) => {
      if (pointer !== null || event.button > 0) return;
      event.preventDefault();
      pointer = event.pointerId;
      try {
        canvas.setPointerCapture(event.pointerId); // the stroke goes on outside the pad
      } catch {
        // (a pointer the browser does not track, such as a synthetic one: no capture needed)
      }
      this.remember();
      last = this.at(event);
      this.stroke(last, last);
      this.render();
    });
    canvas.addEventListener("pointermove", (event) => {
      if (event.pointerId !== pointer) return;
      const events = event.getCoalescedEvents?.().length ? event.getCoalescedEvents() : [event];
      for (const e of events) {
        const point = this.at(e);
        this.stroke(last, point);
        last = point;
      }
      this.render();
    });
    const end = (event) => {
      if (event.pointerId !== pointer) return;
      pointer = null;
      last = null;
      this.changed("stroke");
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
  }
}
