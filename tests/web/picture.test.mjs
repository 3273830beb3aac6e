// The page's picture rules (web/picture/*.js) that need no browser: strength in steps (diffusers'
// get_timesteps, as sdlens/img2img.py), the centre crop (the CLI's rule, with Python's rounding),
// file sniffing and header sizes, compositing on white, and the brush. Run by
// tests/test_backend_rules.py: node --test tests/web/
import assert from "node:assert/strict";
import { test } from "node:test";

import { centreCrop, describe, headerSize, onWhite, sniff } from "../../web/picture/decode.js";
import { strokePixels } from "../../web/picture/sketch.js";
import { stepsAtStrength, strengthLine } from "../../web/picture/strength.js";

test("strength in steps follows int(steps · strength)", () => {
  assert.equal(strengthLine(25, 0.6), "strength 0.6 → the last 15 of 25 steps run");
  assert.deepEqual(stepsAtStrength(25, 0.3), { run: 7, skipped: 18, steps: 25 });
  assert.deepEqual(stepsAtStrength(10, 1), { run: 10, skipped: 0, steps: 10 });
  assert.match(strengthLine(4, 0.2), /runs no step at all/);
  assert.match(strengthLine(25, 0), /above 0 and at most 1/);
  assert.match(strengthLine(25, 1.5), /above 0 and at most 1/);
  // 0.29 · 100 = 28.999999999999996 in floating point: Python's int() and Math.floor agree on 28
  assert.equal(stepsAtStrength(100, 0.29).run, 28);
});

test("the centre crop is the CLI's (round half to even)", () => {
  assert.deepEqual(centreCrop(640, 480, 64, 64), { x: 80, y: 0, width: 480, height: 480 });
  assert.deepEqual(centreCrop(480, 640, 64, 64), { x: 0, y: 80, width: 480, height: 480 });
  assert.deepEqual(centreCrop(64, 64, 64, 64), { x: 0, y: 0, width: 64, height: 64 });
  // 7 · 64/128 = 3.5 → 4 and 5 · 64/128 = 2.5 → 2: Python's round (half to even), not Math.round
  assert.deepEqual(centreCrop(7, 5, 128, 64), { x: 0, y: 0, width: 7, height: 4 });
  assert.deepEqual(centreCrop(5, 5, 128, 64), { x: 0, y: 1, width: 5, height: 2 });
  assert.equal(describe(640, 480, centreCrop(640, 480, 64, 64), { width: 64, height: 64 }, false),
    "640×480 → centre-cropped and resized to 64×64.");
});

test("what a file is, from its first bytes", () => {
  const png = new Uint8Array(24);
  png.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  new DataView(png.buffer).setUint32(16, 8000);
  new DataView(png.buffer).setUint32(20, 6000);
  assert.equal(sniff(png), "png");
  assert.deepEqual(headerSize(png, "png"), { width: 8000, height: 6000 });
  assert.equal(sniff(new TextEncoder().encode("hello, not a picture")), null);
  const jpeg = Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0, 0xff, 0xc0, 0, 17, 8, 0, 64, 0, 128, 4, 0, 0, 0]);
  assert.equal(sniff(jpeg), "jpeg");
  assert.deepEqual(headerSize(jpeg, "jpeg"), { width: 128, height: 64, channels: 4 });
});

test("transparent pixels go on white, rounded as the Python does", () => {
  const { rgba, transparent } = onWhite(Uint8ClampedArray.from([200, 0, 0, 128, 10, 20, 30, 255, 0, 0, 0, 0]));
  assert.equal(transparent, true);
  // (c·a + 255·(255 − a) + 127) // 255
  assert.deepEqual(Array.from(rgba), [227, 127, 127, 255, 10, 20, 30, 255, 255, 255, 255, 255]);
});

test("the brush paints the pixel under the pointer and those within its radius", () => {
  assert.deepEqual([...strokePixels([3.2, 4.7], [3.2, 4.7], 1, 10, 10)], [4 * 10 + 3]);
  const dot = strokePixels([5.5, 5.5], [5.5, 5.5], 3, 10, 10);
  assert.deepEqual([...dot].sort((a, b) => a - b), [44, 45, 46, 54, 55, 56, 64, 65, 66]); // a 3×3 square (√2 < 1.5)
  const line = strokePixels([0.5, 0.5], [9.5, 0.5], 1, 10, 10);
  assert.equal(line.size, 10);
  assert.equal(strokePixels([-3, -3], [-1, -1], 1, 10, 10).size, 0); // outside: nothing
});
