// What a first visit does (web/first_visit.js): runs the starter, leaves a link's run to the link,
// and offers a full-size model on a slow backend with its estimated time. Run by
// tests/test_backend_rules.py: node --test tests/web/
import assert from "node:assert/strict";
import { test } from "node:test";

import { estimateSeconds, firstVisit } from "../../web/first_visit.js";

const variants = (unetBytes) => ({ fp32: { files: [{ bytes: unetBytes }] }, int8: { files: [{ bytes: unetBytes / 4 }] } });
const model = (size, unetBytes) => ({
  name: size === 64 ? "shapes" : "sd-turbo",
  vae_scale_factor: 8,
  defaults: { width: size, height: size, steps: size === 64 ? 25 : 1, guidance: size === 64 ? 7.5 : 0 },
  components: { unet: { variants: variants(unetBytes) } },
});
const shapes = model(64, 20e6);
const turbo = model(512, 3.46e9);
const wasm = { ep: "wasm", label: "WASM", variant: "int8", threads: 2 };
const gpu = { ep: "webgpu", label: "WebGPU fp16", variant: "fp16", threads: 2 };
const swiftshader = { ep: "webgpu", label: "WebGPU fp32 (software)", variant: "fp32", threads: 2 };
const noLink = { settings: {}, compare: null };

async function visit({ manifest = shapes, backend = wasm, link = noLink, search = "", prompt = "a red circle", steps, guidance } = {}) {
  const log = { ran: 0, offered: null };
  const form = { prompt, steps: steps ?? manifest.defaults.steps, guidance: guidance ?? manifest.defaults.guidance };
  const what = await firstVisit({
    link, manifest, backend, form, search,
    run: async () => { log.ran += 1; },
    offer: (text) => { log.offered = text; },
  });
  return { what, ...log };
}

test("a first visit runs the starter prompt once", async () => {
  assert.deepEqual(await visit(), { what: "ran", ran: 1, offered: null });
  // a small model runs at once on any backend
  assert.equal((await visit({ backend: swiftshader })).ran, 1);
});

test("a link with a prompt (or a comparison) runs instead: the starter does not", async () => {
  assert.deepEqual(await visit({ link: { settings: { prompt: "a blue star", seed: "3" }, compare: null } }),
    { what: "link", ran: 0, offered: null });
  assert.equal((await visit({ link: { settings: {}, compare: { mode: "prompt", value: "x" } } })).what, "link");
  // a link that only names a model or a seed still shows that model working, with those settings
  assert.equal((await visit({ link: { settings: { model: "shapes", seed: "9" }, compare: null } })).ran, 1);
});

test("?autorun=0 and an empty prompt keep the page idle", async () => {
  assert.deepEqual(await visit({ search: "?backend=wasm&autorun=0" }), { what: "off", ran: 0, offered: null });
  assert.equal((await visit({ prompt: "  " })).what, "no prompt");
});

test("a full-size model on a slow backend is offered with its estimated time, not run", async () => {
  for (const backend of [wasm, swiftshader]) {
    const { what, ran, offered } = await visit({ manifest: turbo, backend });
    assert.equal(what, "offered");
    assert.equal(ran, 0);
    assert.match(offered, /Press Generate/);
    assert.match(offered, /about \d+ (seconds|minutes)/);
  }
  // on a real GPU it runs
  assert.equal((await visit({ manifest: turbo, backend: gpu })).ran, 1);
});

test("the estimate is the measured SD-Turbo run where it matches, and scales with steps, guidance and threads", () => {
  const one = estimateSeconds(turbo, wasm, { steps: 1, guidance: 0 });
  assert.ok(Math.abs(one - (14.7 + 33.8)) < 1e-9, one); // README: int8, 2 threads, one step + VAE
  assert.ok(Math.abs(estimateSeconds(turbo, wasm, { steps: 25, guidance: 7.5 }) - (50 * 14.7 + 33.8)) < 1e-9);
  assert.ok(Math.abs(estimateSeconds(turbo, { ...wasm, threads: 1 }, { steps: 1, guidance: 0 }) - 2 * one) < 1e-9);
});
